"""The mailbox table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime


class Blob(Base):
    """One sealed part of a row set in transit; deleted once its recipient used it.

    A row set travels as `parts` envelopes sharing one `upload` id; its recipient's task is
    queued when the last of them is in.
    """

    __tablename__ = "mailbox"
    __table_args__ = (UniqueConstraint("query_id", "step", "part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    query_id: Mapped[str] = mapped_column(String(32), ForeignKey("queries.id"), index=True)
    step: Mapped[str] = mapped_column(String(100))
    part: Mapped[int] = mapped_column(Integer, server_default="0")
    parts: Mapped[int] = mapped_column(Integer, server_default="1")
    upload: Mapped[str] = mapped_column(String(32), server_default="0")
    sender: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
