"""Recording agreements and checking a query's spec against its agreement."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from protocol.spec import QuerySpec
from services.governance import agreement_problems, terms_problems
from services.hub.agreements.models import Agreement
from services.hub.audit import service as audit
from services.hub.auth import Principal
from services.hub.errors import AgreementViolation, Conflict, InvalidRequest, NotFound
from services.wire import AgreementOut, AgreementTerms


def _out(row: Agreement) -> AgreementOut:
    return AgreementOut(**row.terms, created_at=row.created_at, created_by=row.created_by)


def terms_of(row: Agreement) -> AgreementTerms:
    """The stored terms; an agreement recorded before the binding terms existed still loads
    (and permits no query until it is recorded again with them)."""
    return AgreementTerms.model_validate(row.terms)


def create(
    *, session: Session, terms: AgreementTerms, actor: Principal, now: dt.datetime
) -> AgreementOut:
    """Record an agreement; its terms never change afterwards.

    An amendment is a new agreement under a new id that names the one it `supersedes`:
    from then on no query runs under the old one, and the audit log says who amended what.
    """
    if session.get(Agreement, terms.id) is not None:
        raise Conflict(
            f"agreement {terms.id} already exists; agreements are immutable: to amend it, "
            f'record the new terms under a new id with "supersedes": "{terms.id}"'
        )
    problems = terms_problems(terms)
    if problems:
        raise InvalidRequest("; ".join(problems))
    if terms.supersedes is not None:
        if session.get(Agreement, terms.supersedes) is None:
            raise NotFound(
                f"agreement {terms.id} supersedes {terms.supersedes}, which is not on file"
            )
        earlier = superseded_by(session, terms.supersedes)
        if earlier is not None:
            raise Conflict(
                f"agreement {terms.supersedes} was already superseded by {earlier}; "
                f"amend {earlier} instead"
            )
    row = Agreement(
        id=terms.id,
        terms=terms.model_dump(mode="json"),
        valid_until=terms.valid_until,
        destroy_results_after=terms.destroy_results_after,
        created_at=now,
        created_by=actor.name,
    )
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        at=now,
        actor=actor.name,
        action="agreement.created" if terms.supersedes is None else "agreement.amended",
        detail={
            "agreement": terms.id,
            "participants": terms.participants,
            **({"supersedes": terms.supersedes} if terms.supersedes else {}),
        },
    )
    return _out(row)


def superseded_by(session: Session, agreement_id: str) -> str | None:
    """The agreement on file that amends `agreement_id`, if any (agreements are few)."""
    for row in session.scalars(select(Agreement).order_by(Agreement.created_at)):
        if row.terms.get("supersedes") == agreement_id:
            return row.id
    return None


def get(*, session: Session, agreement_id: str) -> AgreementOut:
    row = session.get(Agreement, agreement_id)
    if row is None:
        raise NotFound(f"no agreement {agreement_id}")
    return _out(row)


def list_agreements(*, session: Session) -> list[AgreementOut]:
    return [_out(a) for a in session.scalars(select(Agreement).order_by(Agreement.id))]


def permit(*, session: Session, spec: QuerySpec, today: dt.date) -> Agreement:
    """The agreement `spec` names, if it permits the query today; otherwise why not."""
    row = session.get(Agreement, spec.agreement)
    if row is None:
        raise AgreementViolation(
            f"no agreement {spec.agreement} is on file; an administrator must record it first"
        )
    newer = superseded_by(session, spec.agreement)
    if newer is not None:
        raise AgreementViolation(
            f"agreement {spec.agreement} was superseded by agreement {newer}; "
            f"submit the query under {newer}"
        )
    problems = agreement_problems(terms_of(row), spec, today=today)
    if problems:
        raise AgreementViolation("; ".join(problems))
    return row
