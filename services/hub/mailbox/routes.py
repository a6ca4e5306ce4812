"""Node routes for the relay: push a sealed part of a row set, fetch one addressed to you."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from services.hub.auth import NodeCaller
from services.hub.context import Hub
from services.hub.mailbox import service
from services.hub.routing import BINARY_BODY, BINARY_RESPONSE, QueryId, Step, errors
from services.wire import (
    AGENCY_PATTERN,
    MAX_PARTS,
    PARTS_HEADER,
    RECIPIENT_HEADER,
    SENDER_HEADER,
    UPLOAD_HEADER,
    UPLOAD_PATTERN,
    RelayReceipt,
)

router = APIRouter(prefix="/v1/node/mailbox", tags=["relay"])
Recipient = Annotated[str | None, Header(alias=RECIPIENT_HEADER, pattern=AGENCY_PATTERN)]
Part = Annotated[int, Query(ge=0, lt=MAX_PARTS, description="which part of the row set, from 0")]
Parts = Annotated[int, Query(ge=1, le=MAX_PARTS, description="how many parts the row set has")]
Upload = Annotated[
    str, Query(pattern=UPLOAD_PATTERN, description="id the sender gives every part of one run")
]


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
    part: Part = 0,
    parts: Parts = 1,
    upload: Upload = "0",
) -> RelayReceipt:
    """Store one sealed part of a row set for its recipient (each step once); the last part
    queues the recipient's task."""
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
                part=part,
                parts=parts,
                upload=upload,
            )

    return await run_in_threadpool(store)


@router.get("/{query_id}/{step}", responses={**errors(403, 404, 410), **BINARY_RESPONSE})
def fetch_envelope(
    query_id: QueryId, step: Step, caller: NodeCaller, hub: Hub, part: Part = 0
) -> Response:
    """One sealed part of a row set addressed to the calling node; the sender, the number
    of parts and the upload id are in headers."""
    with hub.db.transaction() as session:
        envelope, sender, parts, upload = service.fetch(
            session=session, query_id=query_id, step=step, agency=caller.agency or "", part=part
        )
    headers = {SENDER_HEADER: sender, PARTS_HEADER: str(parts), UPLOAD_HEADER: upload}
    return Response(envelope, media_type="application/octet-stream", headers=headers)
