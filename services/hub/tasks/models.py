"""The tasks table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime
from services.wire import TaskKind, TaskStatus


class Task(Base):
    """One protocol step for one node; `step_key` makes creating the same task twice a no-op."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("query_id", "node", "step_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    query_id: Mapped[str] = mapped_column(String(32), ForeignKey("queries.id"), index=True)
    node: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[TaskKind] = mapped_column(String(16))
    step_key: Mapped[str] = mapped_column(String(100))
    input_step: Mapped[str | None] = mapped_column(String(100), nullable=True)
    input_sender: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[TaskStatus] = mapped_column(String(16), index=True)
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
