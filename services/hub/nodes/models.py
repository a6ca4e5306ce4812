"""The node registry table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime


class Node(Base):
    """An enrolled agency node: its public keys only; private keys never leave the node."""

    __tablename__ = "nodes"

    agency: Mapped[str] = mapped_column(String(32), primary_key=True)
    box_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    verify_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    enrolled_by: Mapped[str] = mapped_column(String(64))
    last_seen: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
