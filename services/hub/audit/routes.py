"""Routes for auditors: read the hub's audit log and verify its hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.hub.audit import service
from services.hub.auth import Auditor
from services.hub.context import Hub
from services.hub.routing import QUERY_ID_PATTERN, errors
from services.wire import AuditEntryOut, ChainVerification

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", responses=errors(403))
def read_audit(
    _: Auditor,
    hub: Hub,
    query_id: Annotated[str | None, Query(pattern=QUERY_ID_PATTERN)] = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AuditEntryOut]:
    """Audit entries in order (after `after`), optionally for one query."""
    with hub.db.transaction() as session:
        rows = service.entries(session=session, query_id=query_id, after=after, limit=limit)
        return [
            AuditEntryOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                query_id=e.query_id,
                detail=e.detail,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in rows
        ]


@router.get("/verify", responses=errors(403))
def verify_audit(_: Auditor, hub: Hub) -> ChainVerification:
    """Recompute the whole chain: ok, or the first entry that was altered, removed or moved."""
    with hub.db.transaction() as session:
        check = service.verify(session=session)
    return ChainVerification(
        ok=check.ok,
        entries=check.entries,
        head=check.head,
        first_bad=check.first_bad,
        problem=check.problem,
    )
