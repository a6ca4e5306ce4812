"""Bearer credentials and roles: every route names the roles it admits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.hub.context import Hub, HubContext
from services.hub.credentials.models import Credential
from services.hub.errors import Forbidden, NotAuthenticated
from services.hub.nodes.models import Node
from services.wire import NODE_HEADER, Role

BOOTSTRAP_ADMIN = "bootstrap-admin"
_bearer = HTTPBearer(auto_error=False, description="a crosstally credential")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a credential's name and role, and for a node its agency."""

    name: str
    role: Role
    agency: str | None = None


def new_token() -> str:
    """A fresh 256-bit bearer token."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(session: Session, hub: HubContext, token: str) -> Principal:
    digest = token_hash(token)
    admin = hub.settings.admin_token.get_secret_value()
    if admin and hmac.compare_digest(digest, token_hash(admin)):
        return Principal(BOOTSTRAP_ADMIN, "admin")
    row = session.scalar(select(Credential).where(Credential.token_hash == digest))
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated(
            "unknown or revoked credential; ask the hub administrator to issue one"
        )
    if row.role == "node":
        node = session.get(Node, row.agency)
        if node is None or not node.active:
            raise NotAuthenticated(f"node {row.agency} is not enrolled or was deactivated")
        node.last_seen = hub.now()
    return Principal(row.name, row.role, row.agency)


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise NotAuthenticated("missing credential: send 'Authorization: Bearer <token>'")
    if len(credentials.credentials) > 200:
        raise NotAuthenticated("unknown or revoked credential")
    return credentials.credentials


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only `roles` (never nodes: they use `node_caller`)."""

    def dependency(credentials: Bearer, hub: Hub) -> Principal:
        token = _token(credentials)
        with hub.db.transaction() as session:
            principal = authenticate(session, hub, token)
        if principal.role not in roles:
            raise Forbidden(
                f"{principal.role} credentials cannot do this; it needs {' or '.join(roles)}"
            )
        return principal

    return dependency


def node_caller(
    credentials: Bearer,
    hub: Hub,
    node: Annotated[str | None, Header(alias=NODE_HEADER, max_length=32)] = None,
) -> Principal:
    """A node's credential together with the agency it claims in the node header."""
    token = _token(credentials)
    with hub.db.transaction() as session:
        principal = authenticate(session, hub, token)
    if principal.role != "node":
        raise Forbidden(f"{principal.role} credentials cannot act as a node")
    if node != principal.agency:
        raise Forbidden(
            f"this credential belongs to node {principal.agency}; send {NODE_HEADER}: "
            f"{principal.agency}"
        )
    return principal


NodeCaller = Annotated[Principal, Depends(node_caller)]
Admin = Annotated[Principal, Depends(require("admin"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Analyst = Annotated[Principal, Depends(require("analyst"))]
Auditor = Annotated[Principal, Depends(require("auditor", "admin"))]
Follower = Annotated[Principal, Depends(require("admin", "operator", "analyst", "auditor"))]
