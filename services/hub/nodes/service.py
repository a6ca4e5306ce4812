"""Enrolling, listing and deactivating agency nodes."""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.hub.audit import service as audit
from services.hub.auth import Principal, new_token, token_hash
from services.hub.credentials.models import Credential
from services.hub.errors import Conflict, NotFound
from services.hub.nodes.models import Node
from services.wire import CredentialIssued, NodeEnrollment, NodeOut, PartyKeysOut


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def node_out(node: Node) -> NodeOut:
    return NodeOut(
        agency=node.agency,
        box_key=_b64(node.box_key),
        verify_key=_b64(node.verify_key),
        enrolled_at=node.enrolled_at,
        last_seen=node.last_seen,
        active=node.active,
    )


def party_keys(node: Node) -> PartyKeysOut:
    return PartyKeysOut(box_key=_b64(node.box_key), verify_key=_b64(node.verify_key))


def enroll(
    *, session: Session, enrollment: NodeEnrollment, actor: Principal, now: dt.datetime
) -> CredentialIssued:
    """Register a node's public keys and issue its credential (shown once)."""
    if session.get(Node, enrollment.agency) is not None:
        raise Conflict(
            f"node {enrollment.agency} is already enrolled; deactivate it first to re-enroll"
        )
    session.add(
        Node(
            agency=enrollment.agency,
            box_key=base64.b64decode(enrollment.box_key),
            verify_key=base64.b64decode(enrollment.verify_key),
            enrolled_at=now,
            enrolled_by=actor.name,
            active=True,
        )
    )
    session.flush()
    token = new_token()
    credential = Credential(
        name=f"node:{enrollment.agency}",
        role="node",
        agency=enrollment.agency,
        token_hash=token_hash(token),
        created_at=now,
    )
    session.add(credential)
    session.flush()
    audit.record(
        session=session,
        at=now,
        actor=actor.name,
        action="node.enrolled",
        detail={"agency": enrollment.agency},
    )
    return CredentialIssued(
        id=credential.id, name=credential.name, role="node", agency=enrollment.agency, token=token
    )


def deactivate(*, session: Session, agency: str, actor: Principal, now: dt.datetime) -> NodeOut:
    """Stop a node: its credentials are revoked and the hub forgets its keys' validity."""
    node = session.get(Node, agency)
    if node is None:
        raise NotFound(f"no node {agency} is enrolled")
    node.active = False
    for cred in session.scalars(select(Credential).where(Credential.agency == agency)):
        cred.revoked_at = cred.revoked_at or now
    audit.record(
        session=session,
        at=now,
        actor=actor.name,
        action="node.deactivated",
        detail={"agency": agency},
    )
    return node_out(node)


def list_nodes(*, session: Session) -> list[NodeOut]:
    return [node_out(n) for n in session.scalars(select(Node).order_by(Node.agency))]


def active_nodes(*, session: Session, agencies: list[str]) -> dict[str, Node]:
    rows = session.scalars(select(Node).where(Node.agency.in_(agencies), Node.active.is_(True)))
    return {n.agency: n for n in rows}
