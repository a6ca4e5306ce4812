"""Leasing tasks to nodes: claim, heartbeat, complete, fail, refuse, hold, release, sweep."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from services.hub.audit import service as audit
from services.hub.errors import Conflict, NotFound
from services.hub.mailbox import service as mailbox
from services.hub.nodes.service import active_nodes, party_keys
from services.hub.queries import service as queries
from services.hub.queries.models import Query
from services.hub.results.models import Result
from services.hub.tasks.models import Task
from services.logs import bind
from services.wire import NodeTask, StewardDecision, TaskProblem


def _expired(now: dt.datetime) -> ColumnElement[bool]:
    return and_(Task.status == "leased", Task.lease_expires_at < now)


def abandon_leases(*, session: Session, agency: str, now: dt.datetime) -> int:
    """A restarted node holds nothing: re-offer its leased tasks at once instead of at expiry."""
    tasks = list(session.scalars(select(Task).where(Task.node == agency, Task.status == "leased")))
    for task in tasks:
        task.status, task.lease_token, task.updated_at = "queued", None, now
        audit.record(
            session=session,
            at=now,
            actor=f"node:{agency}",
            action="task.abandoned",
            query_id=task.query_id,
            detail={"task": task.id, "kind": task.kind},
        )
    return len(tasks)


def claim(
    *, session: Session, agency: str, now: dt.datetime, lease_seconds: float, max_attempts: int
) -> NodeTask | None:
    """Lease the node's oldest runnable task (queued, or leased with an expired lease)."""
    stmt = (
        select(Task)
        .join(Query, Query.id == Task.query_id)
        .where(
            Task.node == agency,
            Query.status.in_(("running", "held")),
            or_(Task.status == "queued", _expired(now)),
            Task.attempts < max_attempts,
        )
        .order_by(Task.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    task = session.scalar(stmt)
    if task is None:
        return None
    query = queries.load(session=session, query_id=task.query_id)
    task.status = "leased"
    task.lease_token = secrets.token_hex(16)
    task.lease_expires_at = now + dt.timedelta(seconds=lease_seconds)
    task.attempts += 1
    task.updated_at = now
    audit.record(
        session=session,
        at=now,
        actor=f"node:{agency}",
        action="task.leased",
        query_id=task.query_id,
        detail={
            "task": task.id,
            "kind": task.kind,
            "step": task.input_step,
            "attempt": task.attempts,
        },
    )
    parties = active_nodes(session=session, agencies=[*query.ring, query.joiner])
    return NodeTask(
        id=task.id,
        lease_token=task.lease_token,
        lease_seconds=lease_seconds,
        kind=task.kind,
        query_id=query.id,
        agreement=query.agreement_id,
        input_step=task.input_step,
        input_sender=task.input_sender,
        spec=query.spec,
        public_key=base64.b64encode(query.public_key).decode(),
        ring=list(query.ring),
        joiner=query.joiner,
        parties={a: party_keys(n) for a, n in parties.items()},
    )


def ended_among(*, session: Session, query_ids: list[str]) -> list[str]:
    """Which of the queries a node keeps state for have ended (or never existed)."""
    if not query_ids:
        return []
    stmt = select(Query.id, Query.status).where(Query.id.in_(query_ids))
    open_ids = {qid for qid, status in session.execute(stmt) if status in ("running", "held")}
    return [q for q in query_ids if q not in open_ids]


def _leased(
    *, session: Session, task_id: int, agency: str, lease_token: str, ended_ok: bool = False
) -> Task | None:
    """The task if `lease_token` still holds its lease; None if its query ended meanwhile."""
    task = session.get(Task, task_id)
    if task is None or task.node != agency:
        raise NotFound(f"no task {task_id} for node {agency}")
    bind(query_id=task.query_id, step=task.input_step or task.kind, task=task.id)
    # Query first, then task: the order `queries.end` takes them in, so no deadlock.
    queries.load(session=session, query_id=task.query_id, lock=True)
    session.refresh(task, with_for_update=True)
    same = secrets.compare_digest(task.lease_token or "", lease_token)
    if ended_ok and same and task.status in ("cancelled", "done"):
        # The query ended while the node worked, or this step's tally released it.
        return None
    if task.status != "leased" or not same:
        raise Conflict(
            f"task {task_id} is no longer leased to you (lease expired and it was re-offered, "
            "or it ended); drop its work and claim again"
        )
    return task


def heartbeat(
    *,
    session: Session,
    task_id: int,
    agency: str,
    lease_token: str,
    now: dt.datetime,
    lease_seconds: float,
) -> dt.datetime:
    task = _leased(session=session, task_id=task_id, agency=agency, lease_token=lease_token)
    assert task is not None
    task.lease_expires_at = now + dt.timedelta(seconds=lease_seconds)
    task.updated_at = now
    return task.lease_expires_at


def tally_sent(*, session: Session, query_id: str, agency: str, now: dt.datetime) -> None:
    """The joiner's tally arrived: the join step that sent it is done, not cancelled with
    what the release leaves open (the node's own `complete` then finds it done)."""
    tasks = session.scalars(
        select(Task).where(
            Task.query_id == query_id,
            Task.node == agency,
            Task.kind == "join",
            Task.status == "leased",
        )
    )
    for task in tasks:
        task.status, task.updated_at = "done", now  # the lease token stays for its `complete`
        audit.record(
            session=session,
            at=now,
            actor=f"node:{agency}",
            action="task.completed",
            query_id=query_id,
            detail={"task": task.id, "kind": task.kind, "sent": "tally"},
        )


def complete(
    *, session: Session, task_id: int, agency: str, lease_token: str, now: dt.datetime
) -> None:
    task = _leased(
        session=session, task_id=task_id, agency=agency, lease_token=lease_token, ended_ok=True
    )
    if task is None:
        return
    task.status, task.lease_token, task.updated_at = "done", None, now
    query = queries.load(session=session, query_id=task.query_id, lock=True)
    query.steps_done = min(query.steps_done + 1, query.steps_total)
    detail: dict[str, object] = {"task": task.id, "kind": task.kind}
    if task.input_step:
        # The recipient is done with what it read: the hub need not hold it any longer.
        detail["relay_parts_deleted"] = mailbox.discard(
            session=session, query_id=task.query_id, step=task.input_step
        )
    audit.record(
        session=session,
        at=now,
        actor=f"node:{agency}",
        action="task.completed",
        query_id=task.query_id,
        detail=detail,
    )


def _report(
    *,
    session: Session,
    task_id: int,
    agency: str,
    problem: TaskProblem,
    now: dt.datetime,
    action: str,
    **detail: object,
) -> Task:
    """What every report of a step that did not run does: the lease ends, the reason is
    kept on the task and written to the audit log."""
    task = _leased(session=session, task_id=task_id, agency=agency, lease_token=problem.lease_token)
    assert task is not None
    task.error, task.updated_at, task.lease_token = problem.reason, now, None
    audit.record(
        session=session,
        at=now,
        actor=f"node:{agency}",
        action=action,
        query_id=task.query_id,
        detail={"task": task.id, "reason": problem.reason[:500], **detail},
    )
    return task


def _fail_query(*, session: Session, task: Task, now: dt.datetime, error: str) -> None:
    task.status = "failed"
    query = queries.load(session=session, query_id=task.query_id, lock=True)
    queries.end(session=session, query=query, status="failed", now=now, error=error)


def fail(
    *,
    session: Session,
    task_id: int,
    agency: str,
    problem: TaskProblem,
    now: dt.datetime,
    max_attempts: int,
) -> None:
    """A node could not run its step: retry it if asked and allowed, else end the query."""
    task = _report(
        session=session, task_id=task_id, agency=agency, problem=problem, now=now,
        action="task.failed", retry=problem.retry,
    )  # fmt: skip
    if problem.retry and task.attempts < max_attempts:
        task.status = "queued"
        return
    error = f"{task.kind} step at {agency} failed: {problem.reason}"
    _fail_query(session=session, task=task, now=now, error=error)


def refuse(
    *, session: Session, task_id: int, agency: str, problem: TaskProblem, now: dt.datetime
) -> None:
    """The node's own agreement check refused the task: the query ends with its reason."""
    task = _report(
        session=session, task_id=task_id, agency=agency, problem=problem, now=now,
        action="task.refused",
    )  # fmt: skip
    _fail_query(session=session, task=task, now=now, error=f"refused by {agency}: {problem.reason}")


def hold(
    *, session: Session, task_id: int, agency: str, problem: TaskProblem, now: dt.datetime
) -> None:
    """The node holds the task for its data steward; the query waits (its deadline still runs)."""
    task = _report(
        session=session, task_id=task_id, agency=agency, problem=problem, now=now,
        action="task.held",
    )  # fmt: skip
    task.status = "held"
    task.attempts = max(task.attempts - 1, 0)  # waiting for a person is not a failed attempt
    query = queries.load(session=session, query_id=task.query_id, lock=True)
    query.status, query.phase = "held", f"awaiting approval at {agency}"


def decide_held(
    *, session: Session, query_id: str, agency: str, decision: StewardDecision, now: dt.datetime
) -> int:
    """The node's steward decided: its held tasks run again, or the query fails."""
    query = queries.load(session=session, query_id=query_id, lock=True)
    if not queries.is_open(query):
        why = f": {query.error[:300]}" if query.error else ""
        raise Conflict(
            f"query {query_id} has ended ({query.status}{why}) before {agency}'s steward "
            "decided; the held task is no longer pending and the decision is not needed"
        )
    tasks = list(
        session.scalars(
            select(Task).where(
                Task.query_id == query_id, Task.node == agency, Task.status == "held"
            )
        )
    )
    if not tasks:
        raise Conflict(f"node {agency} holds no task of query {query_id}")
    action = "task.approved" if decision.approve else "task.refused"
    audit.record(
        session=session,
        at=now,
        actor=f"node:{agency}",
        action=action,
        query_id=query_id,
        detail={"steward": decision.steward, "tasks": len(tasks), "reason": decision.reason[:500]},
    )
    if not decision.approve:
        for task in tasks:
            task.status, task.error, task.updated_at = "failed", decision.reason, now
        reason = decision.reason or "no reason given"
        queries.end(
            session=session,
            query=query,
            status="failed",
            now=now,
            error=f"refused by {agency}'s data steward {decision.steward}: {reason}",
        )
        return len(tasks)
    for task in tasks:
        task.status, task.error, task.updated_at = "queued", None, now
    still_held = session.scalar(
        select(Task.id).where(Task.query_id == query_id, Task.status == "held")
    )
    if still_held is None:
        query.status, query.phase = "running", "blinding"
    return len(tasks)


def sweep(*, session: Session, now: dt.datetime, max_attempts: int) -> None:
    """End queries whose tasks ran out of attempts or whose deadline passed; purge old results."""
    exhausted = session.scalars(
        select(Task).where(
            or_(_expired(now), Task.status == "queued"), Task.attempts >= max_attempts
        )
    )
    for task in list(exhausted):
        task.status, task.lease_token, task.updated_at = "failed", None, now
        task.error = f"no result after {task.attempts} leases (node unreachable or crashing)"
        query = queries.load(session=session, query_id=task.query_id, lock=True)
        queries.end(
            session=session,
            query=query,
            status="failed",
            now=now,
            error=f"{task.kind} step at {task.node}: {task.error}",
        )
    late = session.scalars(
        select(Query).where(Query.status.in_(("running", "held")), Query.deadline < now)
    )
    for query in list(late):
        queries.end(
            session=session,
            query=query,
            status="failed",
            now=now,
            error="the query did not finish before its deadline",
        )
    due = session.scalars(
        select(Result).where(Result.purged_at.is_(None), Result.destroy_after < now.date())
    )
    for result in list(due):
        result.table, result.purged_at = None, now
        query = queries.load(session=session, query_id=result.query_id)
        query.status = query.phase = "purged"
        audit.record(
            session=session,
            at=now,
            actor="hub",
            action="result.purged",
            query_id=result.query_id,
            detail={"destroy_after": str(result.destroy_after)},
        )
