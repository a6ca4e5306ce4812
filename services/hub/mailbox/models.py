"""The mailbox table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime


class Blob(Base):
    """One sealed envelope in transit; deleted when its query ends."""

    __tablename__ = "mailbox"
    __table_args__ = (UniqueConstraint("query_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    query_id: Mapped[str] = mapped_column(String(32), ForeignKey("queries.id"), index=True)
    step: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
