"""Bearer credentials and roles: every route names the roles it admits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.hub.agreements.models import Agreement
from services.hub.context import Hub, HubContext
from services.hub.credentials.models import Credential
from services.hub.errors import Forbidden, NotAuthenticated, NotFound
from services.hub.limits import FailureLimit
from services.hub.nodes.models import Node
from services.hub.queries.models import Query
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


def analyst_agreements(session: Session, principal: Principal) -> list[str] | None:
    """Agreements naming this analyst; None when the role sees every query."""
    if principal.role != "analyst":
        return None
    rows = session.scalars(select(Agreement))
    return [a.id for a in rows if principal.name in a.terms.get("analysts", [])]


def hide_unless_following(session: Session, principal: Principal, query_id: str) -> None:
    """NotFound, worded as for a missing query, unless `principal` may follow `query_id`:
    an analyst learns nothing about the queries of agreements that do not name them."""
    scope = analyst_agreements(session, principal)
    if scope is None:
        return
    agreement = session.scalar(select(Query.agreement_id).where(Query.id == query_id))
    if agreement is None or agreement not in scope:
        raise NotFound(f"no query {query_id}")


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise NotAuthenticated("missing credential: send 'Authorization: Bearer <token>'")
    if len(credentials.credentials) > 200:
        raise NotAuthenticated("unknown or revoked credential")
    return credentials.credentials


def _authenticated(
    request: Request, hub: HubContext, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller, unless its address has failed too often lately (429, credential unread);
    each credential the hub does not know spends one of the address's tries (a request
    without any credential guesses nothing and spends none)."""
    limit = request.app.state.auth_failures
    assert isinstance(limit, FailureLimit)
    address = request.client.host if request.client is not None else "unknown"
    limit.check(address)
    token = _token(credentials)
    try:
        with hub.db.transaction() as session:
            return authenticate(session, hub, token)
    except NotAuthenticated:
        limit.failed(address)
        raise


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only `roles` (never nodes: they use `node_caller`)."""

    def dependency(request: Request, credentials: Bearer, hub: Hub) -> Principal:
        principal = _authenticated(request, hub, credentials)
        if principal.role not in roles:
            raise Forbidden(
                f"{principal.role} credentials cannot do this; it needs {' or '.join(roles)}"
            )
        return principal

    return dependency


def node_caller(
    request: Request,
    credentials: Bearer,
    hub: Hub,
    node: Annotated[str | None, Header(alias=NODE_HEADER, max_length=32)] = None,
) -> Principal:
    """A node's credential together with the agency it claims in the node header."""
    principal = _authenticated(request, hub, credentials)
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
