"""The hub's store on SQLite and PostgreSQL: migrations match the models, keys are sealed."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from protocol.paillier import generate_keypair
from services.hub.errors import Unavailable
from services.hub.queries.vault import KeyVault
from services.hub.store.db import Database
from services.hub.store.migrate import upgrade
from services.hub.store.models import Base
from tests.services.harness import HubHarness


def test_migrations_reach_exactly_the_models(hub: HubHarness) -> None:
    engine = hub.db.engine
    upgrade(engine)  # a second run on a migrated store is a no-op
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)


def test_a_fresh_database_migrates_on_startup(database_url: str) -> None:
    db = Database(database_url)
    try:
        upgrade(db.engine)
        assert "alembic_version" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()


def test_private_keys_are_sealed_to_their_query_and_the_hubs_key() -> None:
    public, private = generate_keypair()
    vault = KeyVault(b"k" * 32)
    sealed = vault.seal("q1", private)
    assert private.to_bytes() not in sealed
    opened = vault.open("q1", public, sealed)
    assert opened.to_bytes() == private.to_bytes()
    for query_id, other in (("q2", vault), ("q1", KeyVault(b"j" * 32))):
        try:
            other.open(query_id, public, sealed)
        except Unavailable as exc:
            assert "key" in str(exc)
        else:
            raise AssertionError("a sealed key opened for the wrong query or hub key")
