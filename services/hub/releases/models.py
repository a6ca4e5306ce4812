"""The releases table: what each released table answered, kept for as long as the hub."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime


class Release(Base):
    """One released query: its definition (for the differencing rule) and the privacy loss
    it spent. Unlike the result it is never purged: it holds no count, and an agreement's
    budget and earlier releases must outlive their tables."""

    __tablename__ = "releases"

    query_id: Mapped[str] = mapped_column(String(32), ForeignKey("queries.id"), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(64), ForeignKey("agreements.id"), index=True)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
