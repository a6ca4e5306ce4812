"""Node routes for the relay: push a sealed envelope, fetch one addressed to you."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool

from services.hub.auth import NodeCaller
from services.hub.context import Hub
from services.hub.mailbox import service
from services.hub.routing import BINARY_BODY, BINARY_RESPONSE, QueryId, Step, errors
from services.wire import AGENCY_PATTERN, RECIPIENT_HEADER, SENDER_HEADER, RelayReceipt

router = APIRouter(prefix="/v1/node/mailbox", tags=["relay"])
Recipient = Annotated[str | None, Header(alias=RECIPIENT_HEADER, pattern=AGENCY_PATTERN)]


@router.put(
    "/{query_id}/{step}",
    status_code=201,
    responses=errors(403, 404, 409, 410, 413),
    openapi_extra=BINARY_BODY,
)
async def push_envelope(
    request: Request,
    query_id: QueryId,
    step: Step,
    caller: NodeCaller,
    hub: Hub,
    recipient: Recipient = None,
) -> RelayReceipt:
    """Store a sealed row set for its recipient (each step once) and queue its next task."""
    envelope = await request.body()
    sender = caller.agency or ""

    def store() -> RelayReceipt:
        with hub.db.transaction() as session:
            return service.store(
                session=session,
                query_id=query_id,
                step=step,
                sender=sender,
                recipient=recipient,
                envelope=envelope,
                now=hub.now(),
            )

    return await run_in_threadpool(store)


@router.get("/{query_id}/{step}", responses={**errors(403, 404, 410), **BINARY_RESPONSE})
def fetch_envelope(query_id: QueryId, step: Step, caller: NodeCaller, hub: Hub) -> Response:
    """A sealed row set addressed to the calling node; the sender is in a header."""
    with hub.db.transaction() as session:
        envelope, sender = service.fetch(
            session=session, query_id=query_id, step=step, agency=caller.agency or ""
        )
    return Response(
        envelope, media_type="application/octet-stream", headers={SENDER_HEADER: sender}
    )
