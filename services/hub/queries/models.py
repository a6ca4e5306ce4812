"""The queries table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime
from services.wire import Kind, QueryStatus


class Query(Base):
    """One query: public spec and key, progress, and while it runs its sealed private key."""

    __tablename__ = "queries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    agreement_id: Mapped[str] = mapped_column(String(64), ForeignKey("agreements.id"), index=True)
    kind: Mapped[Kind] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    ring: Mapped[list[str]] = mapped_column(JSON)
    joiner: Mapped[str] = mapped_column(String(32))
    status: Mapped[QueryStatus] = mapped_column(String(16), index=True)
    phase: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # SecretBox(private key) under the hub's key-encryption key; NULL once destroyed.
    sealed_private_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    steps_total: Mapped[int] = mapped_column(Integer)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
