"""Issuing, listing and revoking credentials for people (admin, operator, analyst, auditor)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.hub.audit import service as audit
from services.hub.auth import BOOTSTRAP_ADMIN, Principal, new_token, token_hash
from services.hub.credentials.models import Credential
from services.hub.errors import Conflict, NotFound
from services.wire import CredentialCreate, CredentialIssued, CredentialOut


def issue(
    *, session: Session, request: CredentialCreate, actor: Principal, now: dt.datetime
) -> CredentialIssued:
    """A new credential; its name must not be held by a live one, because agreements name
    analysts (and the audit log names every actor) by credential name."""
    if request.name == BOOTSTRAP_ADMIN:
        raise Conflict(
            f"{BOOTSTRAP_ADMIN!r} is the hub's bootstrap administrator; choose another name"
        )
    held = session.scalar(
        select(Credential).where(Credential.name == request.name, Credential.revoked_at.is_(None))
    )
    if held is not None:
        raise Conflict(
            f"a credential named {request.name!r} is already in use (id {held.id}, "
            f"{held.role}); names are how agreements grant access, so choose another name, or "
            f"revoke credential {held.id} first to replace it"
        )
    token = new_token()
    row = Credential(
        name=request.name, role=request.role, token_hash=token_hash(token), created_at=now
    )
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        at=now,
        actor=actor.name,
        action="credential.issued",
        detail={"id": row.id, "name": row.name, "role": row.role},
    )
    return CredentialIssued(id=row.id, name=row.name, role=request.role, token=token)


def out(row: Credential) -> CredentialOut:
    return CredentialOut(
        id=row.id,
        name=row.name,
        role=row.role,
        agency=row.agency,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def list_credentials(*, session: Session) -> list[CredentialOut]:
    return [out(c) for c in session.scalars(select(Credential).order_by(Credential.id))]


def revoke(
    *, session: Session, credential_id: int, actor: Principal, now: dt.datetime
) -> CredentialOut:
    row = session.get(Credential, credential_id)
    if row is None:
        raise NotFound(f"no credential {credential_id}")
    if row.revoked_at is None:
        row.revoked_at = now
        audit.record(
            session=session,
            at=now,
            actor=actor.name,
            action="credential.revoked",
            detail={"id": row.id, "name": row.name, "role": row.role},
        )
    return out(row)
