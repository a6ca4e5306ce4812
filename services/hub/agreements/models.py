"""The agreements table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from services.hub.store.base import Base, UTCDateTime


class Agreement(Base):
    """An agreement's terms (the `AgreementTerms` wire document) and its dates for sweeps."""

    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    destroy_results_after: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
