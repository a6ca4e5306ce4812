"""`crosstally hub serve|migrate|health`: run the hub (settings from CROSSTALLY_HUB_*)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from services.commands.common import LogFormatOption, fail, setup_logging

if TYPE_CHECKING:
    from services.hub.config import HubSettings

app = typer.Typer(help="Run the hub service.", no_args_is_help=True)
SERVE_COMMAND = ("crosstally", "hub", "serve")


def _settings(**overrides: object) -> HubSettings:
    from pydantic import ValidationError

    from services.agency_node.config import settings_problems
    from services.hub.config import HubSettings

    try:
        values = {k: v for k, v in overrides.items() if v is not None}
        return HubSettings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = settings_problems(
            exc,
            missing="missing; set CROSSTALLY_HUB_<SETTING> (docs/services.md lists them)",
            extra="is not a hub setting",
        )
        raise fail(f"hub settings (CROSSTALLY_HUB_*): {problems}") from exc


def _check_store(settings: HubSettings) -> None:
    """Fail with one line saying what to do when the database cannot be opened (rather
    than a long traceback from the app's startup)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from services.hub.store.db import Database

    url = settings.database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise fail(
            f"CROSSTALLY_HUB_DATABASE_URL {url!r} is not a database URL: use "
            "postgresql+psycopg://user:password@host/database or sqlite:///path/hub.sqlite"
        ) from exc
    try:
        db = Database(url)
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            db.dispose()
    except (OperationalError, NoSuchModuleError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        why = cause[0] if cause else exc.__class__.__name__
        raise fail(
            f"cannot open the hub database {shown}: {why}. Check CROSSTALLY_HUB_DATABASE_URL: "
            "the server must be running and the database must exist (for PostgreSQL, "
            "`createdb` it; for SQLite, its directory must exist and be writable); the hub "
            "then creates its tables (`crosstally hub migrate` does it without serving)"
        ) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address (CROSSTALLY_HUB_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (CROSSTALLY_HUB_PORT)")] = None,
    log_format: LogFormatOption = None,
) -> None:
    """Migrate the store to the newest schema, then serve the API."""
    import uvicorn

    from services.hub.app import create_app

    settings = _settings(host=host, port=port, log_format=log_format)
    _check_store(settings)
    setup_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # setup_logging's handler, in the chosen format
        timeout_graceful_shutdown=5,
    )


@app.command()
def migrate() -> None:
    """Bring the hub's database to the newest schema and exit."""
    from services.hub.store.db import Database
    from services.hub.store.migrate import upgrade

    settings = _settings()
    _check_store(settings)
    db = Database(settings.database_url)
    try:
        upgrade(db.engine)
    finally:
        db.dispose()
    typer.echo(f"{db.engine.dialect.name} store is at the newest schema")


@app.command()
def health(
    url: Annotated[str, typer.Option(help="the hub's base URL")] = "http://127.0.0.1:8700",
) -> None:
    """Exit 0 when the hub answers its health check (for container health checks)."""
    import httpx

    try:
        httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise fail(f"hub at {url} is not healthy: {exc}") from exc
