"""The public summary: which queries ran under which agreement, when, and how they ended."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.hub.agreements.models import Agreement
from services.hub.queries.models import Query
from services.wire import TransparencyEntry, TransparencySummary


def summary(*, session: Session, limit: int = 500) -> TransparencySummary:
    """Metadata only: no counts, cohort filters, identifiers or credentials."""
    rows = list(session.scalars(select(Query).order_by(Query.submitted_at.desc()).limit(limit)))
    entries = [
        TransparencyEntry(
            name=q.name,
            agreement=q.agreement_id,
            kind=q.kind,
            participants=sorted(q.ring),
            status=q.status,
            submitted_on=q.submitted_at.date(),
            finished_on=q.finished_at.date() if q.finished_at else None,
        )
        for q in rows
    ]
    return TransparencySummary(
        queries=entries,
        by_status=dict(Counter(q.status for q in rows)),
        agreements=list(session.scalars(select(Agreement.id).order_by(Agreement.id))),
    )
