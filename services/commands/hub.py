"""`crosstally hub serve|migrate|health`: run the hub (settings from CROSSTALLY_HUB_*)."""

from __future__ import annotations

import os
from pathlib import Path
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


def _check_tls(settings: HubSettings) -> None:
    """Fail with one line when the certificate or key cannot be used (rather than a
    traceback from uvicorn's startup)."""
    import ssl

    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except FileNotFoundError as exc:
        raise fail(
            f"TLS file {exc.filename or settings.tls_cert_file} not found; set "
            "CROSSTALLY_HUB_TLS_CERT_FILE and CROSSTALLY_HUB_TLS_KEY_FILE (or --tls-cert and "
            "--tls-key) to the hub's PEM certificate and private key"
        ) from exc
    except (OSError, ssl.SSLError) as exc:
        raise fail(
            f"cannot use TLS certificate {settings.tls_cert_file} with key "
            f"{settings.tls_key_file}: {getattr(exc, 'reason', None) or exc}. Both must be "
            "PEM, the key unencrypted and matching the certificate, readable by the hub"
        ) from exc


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address (CROSSTALLY_HUB_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (CROSSTALLY_HUB_PORT)")] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate (chain): serve HTTPS (CROSSTALLY_HUB_TLS_CERT_FILE)"),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM private key of --tls-cert (CROSSTALLY_HUB_TLS_KEY_FILE)"),
    ] = None,
    log_format: LogFormatOption = None,
) -> None:
    """Migrate the store to the newest schema, then serve the API (HTTPS when given a
    certificate and key)."""
    import logging

    import uvicorn

    from services.hub.app import create_app

    settings = _settings(
        host=host, port=port, tls_cert_file=tls_cert, tls_key_file=tls_key, log_format=log_format
    )
    _check_store(settings)
    _check_tls(settings)
    setup_logging(settings.log_level, settings.log_format)
    if not settings.tls and settings.host not in LOOPBACK_HOSTS:
        logging.getLogger("crosstally.hub").warning(
            "serving plain HTTP on %s: bearer credentials cross the network in clear unless "
            "a TLS proxy sits in front; set CROSSTALLY_HUB_TLS_CERT_FILE and "
            "CROSSTALLY_HUB_TLS_KEY_FILE to serve HTTPS",
            settings.host,
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # setup_logging's handler, in the chosen format
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
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


def _local_url() -> str:
    """This machine's hub, as its own settings serve it (HTTPS with a certificate)."""
    scheme = "https" if os.environ.get("CROSSTALLY_HUB_TLS_CERT_FILE") else "http"
    return f"{scheme}://127.0.0.1:{os.environ.get('CROSSTALLY_HUB_PORT', '8700')}"


@app.command()
def health(
    url: Annotated[
        str | None,
        typer.Option(
            help="the hub's base URL [default: this machine's hub, from CROSSTALLY_HUB_*]"
        ),
    ] = None,
    ca_bundle: Annotated[
        Path | None, typer.Option(help="PEM CA file that signed the hub's certificate")
    ] = None,
) -> None:
    """Exit 0 when the hub answers its health check (for container health checks)."""
    import ssl
    from urllib.parse import urlsplit

    import httpx

    url = url or _local_url()
    verify: ssl.SSLContext | bool = True
    if ca_bundle is not None:
        try:
            verify = ssl.create_default_context(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise fail(f"--ca-bundle {ca_bundle} is not a readable PEM CA file: {exc}") from exc
    elif urlsplit(url).hostname in LOOPBACK_HOSTS:
        # The certificate names the hub's public host, not 127.0.0.1; this call sends no
        # credential and reads only the status, so nothing rides on checking it here.
        verify = False
    try:
        httpx.get(f"{url}/healthz", timeout=5, verify=verify).raise_for_status()
    except httpx.HTTPError as exc:
        raise fail(f"hub at {url} is not healthy: {exc}") from exc
