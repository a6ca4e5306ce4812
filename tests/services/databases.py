"""Fresh hub databases for tests: a SQLite file, or a new PostgreSQL database per session.

PostgreSQL tests skip when the server is unreachable, except under CI (CI=true), where an
unreachable server fails the run instead of silently testing less.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_URL = os.environ.get(
    "CROSSTALLY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: these tests must run)", pytrace=False)
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create a uniquely named database for this session; drop it afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(POSTGRES_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"crosstally_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unreachable(str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
