"""Appending to and verifying the hub's hash-chained audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chain import GENESIS, ChainCheck, link_hash, verify_chain
from services.hub.audit.models import AuditEntry, AuditHead

_HEAD_ID = 1
_UNITS = ("KiB", "MiB", "GiB", "TiB")


def size_bucket(size: int) -> str:
    """A byte count as the power-of-two range of KiB it falls in ("64-128 KiB").

    The audit log keeps sizes only this coarsely: a row set's exact size gives its exact
    row count (docs/services.md, Sizes), so exact bytes would publish cohort sizes to every
    reader of the log. A factor of two is enough to see a run that went wrong.
    """
    if size < 1024:
        return "under 1 KiB"
    low = 1 << ((size // 1024).bit_length() - 1)  # KiB, a power of two
    return f"{_amount(low)}-{_amount(2 * low)}"


def _amount(kib: int) -> str:
    unit = 0
    while kib >= 1024 and unit < len(_UNITS) - 1:
        kib //= 1024
        unit += 1
    return f"{kib} {_UNITS[unit]}"


def _content(
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    query_id: str | None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "query_id": query_id,
        "detail": detail,
    }


def record(
    *,
    session: Session,
    at: dt.datetime,
    actor: str,
    action: str,
    query_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one event; the head row is locked so concurrent appenders stay in one line.

    `detail` holds names, counts, sizes as `size_bucket`s and reasons: never record-level
    data, and no exact byte count (from which cohort sizes follow).
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == _HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=_HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
    seq = head.seq + 1
    at = at.astimezone(dt.UTC)
    body = detail or {}
    entry_hash = link_hash(head.hash, _content(seq, at, actor, action, query_id, body))
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        query_id=query_id,
        detail=body,
        prev_hash=head.hash,
        hash=entry_hash,
    )
    session.add(entry)
    head.seq, head.hash = seq, entry_hash
    session.flush()
    return entry


def entries(
    *, session: Session, query_id: str | None = None, after: int = 0, limit: int = 1000
) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit)
    if query_id is not None:
        stmt = stmt.where(AuditEntry.query_id == query_id)
    return list(session.scalars(stmt))


def _walk(session: Session) -> Iterator[tuple[int, dict[str, Any], str, str]]:
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(500):
        content = _content(e.seq, e.at, e.actor, e.action, e.query_id, e.detail)
        yield e.seq, content, e.prev_hash, e.hash


def verify(*, session: Session) -> ChainCheck:
    """Recompute every hash from the start; also check the head row points at the last entry."""
    check = verify_chain(_walk(session))
    head = session.get(AuditHead, _HEAD_ID)
    if check.ok and head is not None and (head.seq, head.hash) != (check.entries, check.head):
        problem = "the head does not name the last entry: entries were removed or added"
        return ChainCheck(False, check.entries, check.head, head.seq, problem)
    return check
