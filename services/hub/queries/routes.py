"""Routes for operators (submit, cancel) and everyone who follows a query's progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from services.hub.auth import Follower, Operator, Principal, analyst_agreements, require
from services.hub.context import Hub
from services.hub.errors import NotFound
from services.hub.queries import service
from services.hub.routing import QueryId, errors
from services.wire import QueryDetail, QueryOut, QuerySubmit

router = APIRouter(prefix="/v1/queries", tags=["queries"])


@router.post("", status_code=201, responses=errors(400, 403, 409))
async def submit_query(request: QuerySubmit, actor: Operator, hub: Hub) -> QueryOut:
    """Submit a query spec under an agreement; the hub makes its key pair and queues tasks."""
    return await run_in_threadpool(lambda: service.submit(hub=hub, request=request, actor=actor))


@router.get("", responses=errors(403))
def list_queries(
    who: Follower, hub: Hub, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[QueryOut]:
    with hub.db.transaction() as session:
        scope = analyst_agreements(session, who)
        return service.list_queries(session=session, agreements_of=scope, limit=limit)


@router.get("/{query_id}", responses=errors(403, 404))
def get_query(query_id: QueryId, who: Follower, hub: Hub) -> QueryDetail:
    """Status, per-step progress and errors of one query."""
    with hub.db.transaction() as session:
        detail = service.detail(session=session, query_id=query_id)
        scope = analyst_agreements(session, who)
        if scope is not None and detail.agreement not in scope:
            raise NotFound(f"no query {query_id}")
        return detail


@router.post("/{query_id}/cancel", responses=errors(403, 404, 409))
def cancel_query(
    query_id: QueryId,
    actor: Annotated[Principal, Depends(require("operator", "admin"))],
    hub: Hub,
) -> QueryOut:
    """Stop a running query: its key and relay blobs are destroyed."""
    with hub.db.transaction() as session:
        return service.cancel(session=session, query_id=query_id, actor=actor, now=hub.now())
