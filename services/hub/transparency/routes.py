"""Public routes: the transparency summary and a health check (no credential needed)."""

from __future__ import annotations

from fastapi import APIRouter

from services.hub.context import Hub
from services.hub.transparency import service
from services.wire import Health, TransparencySummary

router = APIRouter(tags=["public"])
VERSION = "0.1.0"


@router.get("/v1/transparency")
def transparency(hub: Hub) -> TransparencySummary:
    """Queries run, under which agreement, when and how they ended: no counts, no identifiers."""
    with hub.db.transaction() as session:
        return service.summary(session=session)


@router.get("/healthz")
def health() -> Health:
    return Health(status="ok", version=VERSION)
