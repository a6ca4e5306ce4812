"""The results table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime


class Result(Base):
    """A released table: only cells that passed disclosure control; purged at its date."""

    __tablename__ = "results"

    query_id: Mapped[str] = mapped_column(String(32), ForeignKey("queries.id"), primary_key=True)
    table: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    destroy_after: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
