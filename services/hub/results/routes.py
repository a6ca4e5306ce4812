"""Routes for released results (analysts) and the joiner's encrypted tally (nodes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool

from services.hub.auth import Analyst, NodeCaller, hide_unless_following
from services.hub.context import Hub
from services.hub.results import service
from services.hub.routing import BINARY_BODY, QueryId, errors
from services.wire import SIGNATURE_HEADER, ResultOut, TallyReceipt

router = APIRouter(tags=["results"])


@router.get("/v1/queries/{query_id}/result", responses=errors(403, 404, 410))
def read_result(query_id: QueryId, reader: Analyst, hub: Hub) -> ResultOut:
    """The disclosure-controlled table, for analysts named in the query's agreement; to
    anyone else the query does not exist (404, as for a missing one)."""
    with hub.db.transaction() as session:
        hide_unless_following(session, reader, query_id)
        return service.read(session=session, query_id=query_id, reader=reader, now=hub.now())


@router.post(
    "/v1/node/queries/{query_id}/tally",
    status_code=201,
    responses=errors(400, 403, 404, 409, 410, 413),
    openapi_extra=BINARY_BODY,
)
async def push_tally(
    request: Request,
    query_id: QueryId,
    signature: Annotated[str, Header(alias=SIGNATURE_HEADER, max_length=200)],
    caller: NodeCaller,
    hub: Hub,
) -> TallyReceipt:
    """The joiner's signed EncryptedTally; the hub decrypts, protects and releases it."""
    body = await request.body()
    agency = caller.agency or ""
    return await run_in_threadpool(
        lambda: service.accept_tally(
            hub=hub, query_id=query_id, agency=agency, body=body, signature=signature
        )
    )
