"""What every route needs from the running hub: settings, the store, the clock, the key vault."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.hub.config import HubSettings
from services.hub.queries.vault import KeyVault
from services.hub.store.base import utcnow
from services.hub.store.db import Database

Clock = Callable[[], dt.datetime]


@dataclass
class HubContext:
    """One per app; tests swap `clock` to move time (leases, agreement windows)."""

    settings: HubSettings
    db: Database
    vault: KeyVault
    clock: Clock = field(default=utcnow)

    def now(self) -> dt.datetime:
        return self.clock()


def get_hub(request: Request) -> HubContext:
    hub = request.app.state.hub
    assert isinstance(hub, HubContext)
    return hub


Hub = Annotated[HubContext, Depends(get_hub)]
