"""The release rules the hub applies per agreement: minimum sizes, differencing, privacy budget.

`refusal` is asked twice: when a query is submitted (so a query that cannot be released
costs nobody any work) and again, with the agreement's row locked, just before the table is
stored; only releases recorded by then count, so two near queries run side by side cannot
both be released. `record` keeps the released query's definition and what it spent.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from protocol.noise import DiscreteLaplace
from protocol.spec import QuerySpec
from services.differencing import Definition, definition, differencing_refusal, near_release
from services.governance import size_problems
from services.hub.agreements.models import Agreement
from services.hub.releases.models import Release
from services.wire import AgreementTerms

# Float sums of epsilons: a budget of 1.0 spent in ten releases of 0.1 is not exceeded.
_SLACK = 1e-9


def released(*, session: Session, agreement_id: str) -> list[tuple[str, Definition]]:
    """Every query released under the agreement, oldest first, with its definition."""
    stmt = (
        select(Release.query_id, Release.definition)
        .where(Release.agreement_id == agreement_id)
        .order_by(Release.released_at, Release.query_id)
    )
    return [(query_id, dict(body)) for query_id, body in session.execute(stmt)]


def spent(*, session: Session, agreement_id: str) -> tuple[float, int]:
    """The privacy loss released under the agreement so far, and in how many tables."""
    total, count = session.execute(
        select(func.coalesce(func.sum(Release.epsilon), 0.0), func.count(Release.epsilon)).where(
            Release.agreement_id == agreement_id
        )
    ).one()
    return float(total or 0.0), int(count)


def noise_for(terms: AgreementTerms) -> DiscreteLaplace | None:
    """The noise every count of a table released under `terms` carries, if any."""
    if terms.privacy is None:
        return None
    return DiscreteLaplace(epsilon=terms.privacy.epsilon_per_release)


def _budget_refusal(session: Session, terms: AgreementTerms) -> str | None:
    privacy = terms.privacy
    if privacy is None:
        return None
    used, tables = spent(session=session, agreement_id=terms.id)
    if used + privacy.epsilon_per_release <= privacy.epsilon_budget + _SLACK:
        return None
    return (
        f"not released under agreement {terms.id}: its privacy budget is spent ({tables} "
        f"table(s) released used epsilon {used:g} of {privacy.epsilon_budget:g}, and a table "
        f"needs {privacy.epsilon_per_release:g}). No further table can be released under it; "
        "the stewards decide whether to sign a new agreement with a new budget "
        "(docs/agreements.md, privacy)"
    )


def refusal(
    *,
    session: Session,
    spec: QuerySpec,
    terms: AgreementTerms,
    population: int | None = None,
    lock: bool = False,
) -> str | None:
    """Why a table of `spec` must not be released under `terms` now, or None.

    With privacy on, the budget is the whole defence: every release spends from it, so the
    differencing rule is not applied (two near noisy tables cost two releases' epsilon).
    """
    if lock:  # serialise releases under one agreement (SQLite's writers are serial anyway)
        session.execute(select(Agreement.id).where(Agreement.id == terms.id).with_for_update())
    sizes = size_problems(terms, population=population)
    if sizes:
        return f"not released: {'; '.join(sizes)}"
    if terms.privacy is not None:
        return _budget_refusal(session, terms)
    near = near_release(spec, released(session=session, agreement_id=terms.id))
    if near is not None:
        return differencing_refusal(*near, agreement=terms.id)
    return None


def record(
    *, session: Session, query_id: str, spec: QuerySpec, terms: AgreementTerms, now: dt.datetime
) -> Release:
    """Keep what a released table answered and the privacy loss it spent."""
    row = Release(
        query_id=query_id,
        agreement_id=terms.id,
        released_at=now,
        definition=definition(spec),
        epsilon=None if terms.privacy is None else terms.privacy.epsilon_per_release,
    )
    session.add(row)
    session.flush()
    return row
