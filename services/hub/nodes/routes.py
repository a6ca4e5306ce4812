"""Admin routes for node enrollment."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.hub.auth import Admin, require
from services.hub.context import Hub
from services.hub.nodes import service
from services.hub.routing import AgencyCode, errors
from services.wire import CredentialIssued, NodeEnrollment, NodeOut

router = APIRouter(prefix="/v1/admin/nodes", tags=["nodes"])


@router.post("", status_code=201, responses=errors(403, 409))
def enroll_node(enrollment: NodeEnrollment, actor: Admin, hub: Hub) -> CredentialIssued:
    """Enroll a node's public keys; the response holds its credential, shown only once."""
    with hub.db.transaction() as session:
        return service.enroll(session=session, enrollment=enrollment, actor=actor, now=hub.now())


@router.get(
    "",
    responses=errors(403),
    dependencies=[Depends(require("admin", "operator", "auditor"))],
)
def list_nodes(hub: Hub) -> list[NodeOut]:
    with hub.db.transaction() as session:
        return service.list_nodes(session=session)


@router.post("/{agency}/deactivate", responses=errors(403, 404))
def deactivate_node(agency: AgencyCode, actor: Admin, hub: Hub) -> NodeOut:
    """Deactivate a node and revoke its credentials."""
    with hub.db.transaction() as session:
        return service.deactivate(session=session, agency=agency, actor=actor, now=hub.now())
