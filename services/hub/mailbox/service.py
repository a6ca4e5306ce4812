"""The relay: sealed row sets in parts, stored once, handed to their recipient, then deleted."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.hub.audit import service as audit
from services.hub.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound
from services.hub.mailbox.models import Blob
from services.hub.queries import service as queries
from services.hub.queries.models import Query
from services.hub.tasks.models import Task
from services.wire import MAX_PARTS, RelayReceipt, parse_step


def route(query: Query, step: str) -> tuple[str, str, bool]:
    """(sender, recipient, fully blinded) for a step, from the public ring alone.

    Hop k of a cohort's row set carries the secrets of the first k ring parties counted from
    the cohort's own node; after all of them it goes to the joiner.
    """
    parsed = parse_step(step)
    spec = queries.spec_of(query)
    if parsed is None or parsed[0] not in spec.cohorts:
        raise InvalidRequest(
            f"step {step!r} is not rows:<cohort>:<hop> for a cohort of this query "
            f"({', '.join(spec.cohorts)})"
        )
    cohort, hop = parsed
    ring = list(query.ring)
    if hop > len(ring):
        raise InvalidRequest(f"step {step!r}: hop {hop} exceeds the ring of {len(ring)} nodes")
    start = ring.index(spec.cohorts[cohort].node)
    sender = ring[(start + hop - 1) % len(ring)]
    complete = hop == len(ring)
    recipient = query.joiner if complete else ring[(start + hop) % len(ring)]
    return sender, recipient, complete


def store(
    *,
    session: Session,
    query_id: str,
    step: str,
    sender: str,
    recipient: str | None,
    envelope: bytes,
    now: dt.datetime,
    part: int = 0,
    parts: int = 1,
    upload: str = "0",
) -> RelayReceipt:
    """Keep one part of a row set for its recipient; with the last part in, queue its task.

    A step is accepted once. Parts of one upload may come in any order; a part from a new
    upload replaces an unfinished one (the sender re-ran the step after a crash), so the
    recipient never gets parts of two different runs.
    """
    query = queries.load(session=session, query_id=query_id, lock=True)
    if not queries.is_open(query):
        raise Gone(f"query {query_id} has ended ({query.status}); its relay is closed")
    if sender not in query.ring:
        raise Forbidden(f"node {sender} takes no part in query {query_id}")
    expected_sender, to, complete = route(query, step)
    if sender != expected_sender:
        raise Forbidden(f"step {step} must come from {expected_sender}, not {sender}")
    if recipient is not None and recipient != to:
        raise InvalidRequest(f"step {step} goes to {to}, not {recipient}: check the ring order")
    if not envelope:
        raise InvalidRequest("the envelope is empty")
    if not 1 <= parts <= MAX_PARTS or not 0 <= part < parts:
        raise InvalidRequest(
            f"part {part} of {parts}: parts must be 1 to {MAX_PARTS:,} and part 0 to parts - 1"
        )
    held = _parts(session, query_id, step)
    delivered = session.scalar(
        select(Task.id).where(Task.query_id == query_id, Task.input_step == step).limit(1)
    )
    if _complete(held) or delivered is not None:  # parts of a finished step are deleted
        raise Conflict(f"step {step} of query {query_id} was already relayed; it is accepted once")
    if any(b.upload != upload for b in held):
        # An unfinished upload from an earlier run of the same step: nobody has seen it.
        session.execute(delete(Blob).where(Blob.query_id == query_id, Blob.step == step))
        held = []
    if held and held[0].parts != parts:
        raise InvalidRequest(
            f"upload {upload} of step {step} has {held[0].parts} parts, not {parts}"
        )
    if any(b.part == part for b in held):
        raise Conflict(f"part {part} of step {step} (upload {upload}) is already relayed")
    session.add(
        Blob(
            query_id=query_id,
            step=step,
            part=part,
            parts=parts,
            upload=upload,
            sender=sender,
            recipient=to,
            envelope=envelope,
            size=len(envelope),
            stored_at=now,
        )
    )
    done = len(held) + 1 == parts
    receipt = RelayReceipt(
        query_id=query_id,
        step=step,
        recipient=to,
        bytes=len(envelope),
        part=part,
        parts=parts,
        complete=done,
    )
    if not done:
        return receipt
    kind = "join" if complete else "forward"
    queries.add_task(
        session=session,
        query=query,
        node=to,
        kind=kind,
        now=now,
        input_step=step,
        input_sender=sender,
    )
    if query.status == "running":
        query.phase = "joining" if complete else "relaying"
    audit.record(
        session=session,
        at=now,
        actor=f"node:{sender}",
        action="relay.stored",
        query_id=query_id,
        detail={
            "step": step,
            "sender": sender,
            "recipient": to,
            # Coarse on purpose: the exact size of a row set gives its row count.
            "size": audit.size_bucket(len(envelope) + sum(b.size for b in held)),
            "parts": parts,
        },
    )
    return receipt


class _Part(NamedTuple):
    part: int
    parts: int
    upload: str
    size: int


def _parts(session: Session, query_id: str, step: str) -> list[_Part]:
    """What is held of a step, without loading any envelope."""
    stmt = select(Blob.part, Blob.parts, Blob.upload, Blob.size).where(
        Blob.query_id == query_id, Blob.step == step
    )
    return [_Part(*row) for row in session.execute(stmt)]


def _complete(held: list[_Part]) -> bool:
    return bool(held) and len({b.upload for b in held}) == 1 and len(held) == held[0].parts


def fetch(
    *, session: Session, query_id: str, step: str, agency: str, part: int = 0
) -> tuple[bytes, str, int, str]:
    """One part of a relayed row set, for its recipient only: envelope, sender, parts, upload."""
    query = queries.load(session=session, query_id=query_id)
    if not queries.is_open(query):
        raise Gone(f"query {query_id} has ended ({query.status}); its relay blobs are deleted")
    blob = session.scalar(
        select(Blob).where(Blob.query_id == query_id, Blob.step == step, Blob.part == part)
    )
    if blob is None or blob.recipient != agency or not _complete(_parts(session, query_id, step)):
        raise NotFound(
            f"no relayed step {step} (part {part}) of query {query_id} for node {agency}"
        )
    return blob.envelope, blob.sender, blob.parts, blob.upload


def discard(*, session: Session, query_id: str, step: str) -> int:
    """Delete a step's parts once its recipient has finished the task that read them."""
    result = session.execute(delete(Blob).where(Blob.query_id == query_id, Blob.step == step))
    return int(getattr(result, "rowcount", 0) or 0)
