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
    """Record an agreement; its terms never change afterwards (a new one gets a new id)."""
    if session.get(Agreement, terms.id) is not None:
        raise Conflict(f"agreement {terms.id} already exists; agreements are immutable")
    problems = terms_problems(terms)
    if problems:
        raise InvalidRequest("; ".join(problems))
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
        action="agreement.created",
        detail={"agreement": terms.id, "participants": terms.participants},
    )
    return _out(row)


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
    problems = agreement_problems(terms_of(row), spec, today=today)
    if problems:
        raise AgreementViolation("; ".join(problems))
    return row
