"""Node routes for the pull loop: claim (long poll), heartbeat, complete, fail, refuse, hold."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from services.hub.auth import NodeCaller
from services.hub.context import Hub, HubContext
from services.hub.metrics import Metrics
from services.hub.routing import QueryId, RowId, errors
from services.hub.tasks import service
from services.logs import bind
from services.wire import (
    Acknowledged,
    ClaimRequest,
    ClaimResponse,
    LeaseExtended,
    LeaseReport,
    StewardDecision,
    TaskProblem,
)

router = APIRouter(prefix="/v1/node", tags=["tasks"])
POLL_INTERVAL = 0.2


def _claim_once(hub: HubContext, agency: str, request: ClaimRequest, fresh: bool) -> ClaimResponse:
    settings = hub.settings
    with hub.db.transaction() as session:
        now = hub.now()
        if fresh:
            service.abandon_leases(session=session, agency=agency, now=now)
        task = service.claim(
            session=session,
            agency=agency,
            now=now,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
        )
        ended = service.ended_among(session=session, query_ids=request.holding)
    return ClaimResponse(task=task, ended=ended)


@router.post("/tasks/claim", responses=errors(403))
async def claim_task(
    request: ClaimRequest,
    caller: NodeCaller,
    hub: Hub,
    metrics: Metrics,
    http: Request,
) -> ClaimResponse:
    """Lease the next task for this node, waiting up to `wait_seconds` for one to appear."""
    agency = caller.agency or ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(request.wait_seconds, hub.settings.long_poll_seconds)
    fresh = request.fresh_start
    while True:
        response = await run_in_threadpool(_claim_once, hub, agency, request, fresh)
        fresh = False
        if response.task is not None:
            task = response.task
            metrics.leased(task.id, task.kind)
            bind(query_id=task.query_id, step=task.input_step or task.kind, task=task.id)
            return response
        if loop.time() >= deadline:
            return response
        if await http.is_disconnected():  # the node went away: stop polling for it
            return response
        await asyncio.sleep(POLL_INTERVAL)


@router.post("/tasks/{task_id}/heartbeat", responses=errors(403, 404, 409))
def heartbeat(
    report: LeaseReport,
    task_id: RowId,
    caller: NodeCaller,
    hub: Hub,
) -> LeaseExtended:
    """Extend the lease while a long step runs."""
    with hub.db.transaction() as session:
        expires = service.heartbeat(
            session=session,
            task_id=task_id,
            agency=caller.agency or "",
            lease_token=report.lease_token,
            now=hub.now(),
            lease_seconds=hub.settings.lease_seconds,
        )
    return LeaseExtended(lease_expires_at=expires)


@router.post("/tasks/{task_id}/complete", responses=errors(403, 404, 409))
def complete(
    report: LeaseReport,
    task_id: RowId,
    caller: NodeCaller,
    hub: Hub,
    metrics: Metrics,
) -> Acknowledged:
    with hub.db.transaction() as session:
        service.complete(
            session=session,
            task_id=task_id,
            agency=caller.agency or "",
            lease_token=report.lease_token,
            now=hub.now(),
        )
    metrics.ended(task_id, "done")
    return Acknowledged()


@router.post("/tasks/{task_id}/fail", responses=errors(403, 404, 409))
def fail(
    problem: TaskProblem,
    task_id: RowId,
    caller: NodeCaller,
    hub: Hub,
    metrics: Metrics,
) -> Acknowledged:
    """The step failed; with `retry` it is offered again while attempts remain."""
    with hub.db.transaction() as session:
        service.fail(
            session=session,
            task_id=task_id,
            agency=caller.agency or "",
            problem=problem,
            now=hub.now(),
            max_attempts=hub.settings.max_attempts,
        )
    metrics.ended(task_id, "fail")
    return Acknowledged()


@router.post("/tasks/{task_id}/refuse", responses=errors(403, 404, 409))
def refuse(
    problem: TaskProblem,
    task_id: RowId,
    caller: NodeCaller,
    hub: Hub,
    metrics: Metrics,
) -> Acknowledged:
    """The node's agreement check refused the task; the query fails with the reason."""
    with hub.db.transaction() as session:
        service.refuse(
            session=session,
            task_id=task_id,
            agency=caller.agency or "",
            problem=problem,
            now=hub.now(),
        )
    metrics.ended(task_id, "refuse")
    return Acknowledged()


@router.post("/tasks/{task_id}/hold", responses=errors(403, 404, 409))
def hold(
    problem: TaskProblem,
    task_id: RowId,
    caller: NodeCaller,
    hub: Hub,
    metrics: Metrics,
) -> Acknowledged:
    """The node holds the task for its data steward's decision."""
    with hub.db.transaction() as session:
        service.hold(
            session=session,
            task_id=task_id,
            agency=caller.agency or "",
            problem=problem,
            now=hub.now(),
        )
    metrics.ended(task_id, "hold")
    return Acknowledged()


@router.post("/queries/{query_id}/decision", responses=errors(403, 404, 409))
def steward_decision(
    decision: StewardDecision,
    query_id: QueryId,
    caller: NodeCaller,
    hub: Hub,
) -> Acknowledged:
    """The node's steward decided: held tasks are offered again, or the query fails."""
    with hub.db.transaction() as session:
        service.decide_held(
            session=session,
            query_id=query_id,
            agency=caller.agency or "",
            decision=decision,
            now=hub.now(),
        )
    return Acknowledged()
