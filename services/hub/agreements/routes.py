"""Routes for agreements: admins record them, every person's role may read them."""

from __future__ import annotations

from fastapi import APIRouter

from services.hub.agreements import service
from services.hub.auth import Admin, Follower
from services.hub.context import Hub
from services.hub.routing import AgreementId, errors
from services.wire import AgreementOut, AgreementTerms

router = APIRouter(tags=["agreements"])


@router.post("/v1/admin/agreements", status_code=201, responses=errors(403, 409))
def create_agreement(terms: AgreementTerms, actor: Admin, hub: Hub) -> AgreementOut:
    """Record a signed agreement; nodes enforce their own copies as well."""
    with hub.db.transaction() as session:
        return service.create(session=session, terms=terms, actor=actor, now=hub.now())


@router.get("/v1/agreements", responses=errors(403))
def list_agreements(_: Follower, hub: Hub) -> list[AgreementOut]:
    with hub.db.transaction() as session:
        return service.list_agreements(session=session)


@router.get("/v1/agreements/{agreement_id}", responses=errors(403, 404))
def get_agreement(agreement_id: AgreementId, _: Follower, hub: Hub) -> AgreementOut:
    with hub.db.transaction() as session:
        return service.get(session=session, agreement_id=agreement_id)
