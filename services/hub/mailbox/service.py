"""The relay: store a sealed row set once, queue its recipient's task, hand it over, delete it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.hub.audit import service as audit
from services.hub.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound
from services.hub.mailbox.models import Blob
from services.hub.queries import service as queries
from services.hub.queries.models import Query
from services.wire import RelayReceipt, parse_step


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
) -> RelayReceipt:
    """Keep the envelope for its recipient and queue the recipient's task (accepted once)."""
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
    if session.scalar(select(Blob.id).where(Blob.query_id == query_id, Blob.step == step)):
        raise Conflict(f"step {step} of query {query_id} was already relayed; it is accepted once")
    session.add(
        Blob(
            query_id=query_id,
            step=step,
            sender=sender,
            recipient=to,
            envelope=envelope,
            size=len(envelope),
            stored_at=now,
        )
    )
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
        detail={"step": step, "sender": sender, "recipient": to, "bytes": len(envelope)},
    )
    return RelayReceipt(query_id=query_id, step=step, recipient=to, bytes=len(envelope))


def fetch(*, session: Session, query_id: str, step: str, agency: str) -> tuple[bytes, str]:
    """The envelope and its sender, for its recipient only."""
    query = queries.load(session=session, query_id=query_id)
    if not queries.is_open(query):
        raise Gone(f"query {query_id} has ended ({query.status}); its relay blobs are deleted")
    blob = session.scalar(select(Blob).where(Blob.query_id == query_id, Blob.step == step))
    if blob is None or blob.recipient != agency:
        raise NotFound(f"no relayed step {step} of query {query_id} for node {agency}")
    return blob.envelope, blob.sender
