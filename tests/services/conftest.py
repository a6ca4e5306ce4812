"""Fixtures: a hub on SQLite and on PostgreSQL (one suite, both backends), synthetic agencies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from crosstally.demo import nodes_from_extracts
from crosstally.synth import generate
from protocol.blinding import P256Engine
from protocol.driver import NodeData
from services.hub.app import create_app
from services.hub.config import HubSettings
from services.hub.store.models import Base
from tests.services.databases import postgres_database
from tests.services.harness import ADMIN_TOKEN, HubHarness, MutableClock

BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: what the test checks is decided outside the hub's SQL (a node's check, "
        "a signature, a rule on released figures), so its PostgreSQL run is deselected",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every hub test runs on SQLite and PostgreSQL, except those marked `sqlite_only`."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec is not None else None
        marked = item.get_closest_marker("sqlite_only") is not None
        (drop if marked and backend == "postgresql" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def engine() -> Iterator[P256Engine]:
    eng = P256Engine(workers=1)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def world() -> dict[str, NodeData]:
    """Seven small synthetic agency extracts (records in memory, as a node holds them)."""
    return nodes_from_extracts(generate(people=400, seed=11).extracts)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def hub_settings(url: str, **extra: object) -> HubSettings:
    return HubSettings(
        environment="production",
        database_url=url,
        admin_token=ADMIN_TOKEN,
        key_encryption_key="q" * 43 + "=",
        lease_seconds=30,
        max_attempts=3,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@contextmanager
def running_hub(url: str, **settings: object) -> Iterator[HubHarness]:
    """A migrated, empty hub store behind the ASGI app; the clock is the test's to move."""
    clock = MutableClock()
    app = create_app(hub_settings(url, **settings), clock=clock, background=False)
    with TestClient(app) as client:
        db = app.state.hub.db
        with db.transaction() as session:  # the PostgreSQL database is shared per session
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(delete(table))
        yield HubHarness(client, clock)


@pytest.fixture
def hub(database_url: str) -> Iterator[HubHarness]:
    with running_hub(database_url) as harness:
        yield harness
