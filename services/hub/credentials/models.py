"""The credentials table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime
from services.wire import Role


class Credential(Base):
    """A principal's bearer credential: the token's SHA-256, never the token."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[Role] = mapped_column(String(16))
    agency: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("nodes.agency"), nullable=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
