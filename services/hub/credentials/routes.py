"""Admin routes for people's credentials."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.hub.auth import Admin, require
from services.hub.context import Hub
from services.hub.credentials import service
from services.hub.routing import RowId, errors
from services.wire import CredentialCreate, CredentialIssued, CredentialOut

router = APIRouter(prefix="/v1/admin/credentials", tags=["credentials"])


@router.post("", status_code=201, responses=errors(403, 409))
def issue_credential(request: CredentialCreate, actor: Admin, hub: Hub) -> CredentialIssued:
    """Issue a credential for a person; the token is shown once and stored only hashed."""
    with hub.db.transaction() as session:
        return service.issue(session=session, request=request, actor=actor, now=hub.now())


@router.get("", responses=errors(403), dependencies=[Depends(require("admin", "auditor"))])
def list_credentials(hub: Hub) -> list[CredentialOut]:
    with hub.db.transaction() as session:
        return service.list_credentials(session=session)


@router.post("/{credential_id}/revoke", responses=errors(403, 404))
def revoke_credential(credential_id: RowId, actor: Admin, hub: Hub) -> CredentialOut:
    with hub.db.transaction() as session:
        return service.revoke(
            session=session, credential_id=credential_id, actor=actor, now=hub.now()
        )
