"""The hub's FastAPI app: domain routers, one error handler, body limits, migrations, sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.hub.agreements.routes import router as agreements_router
from services.hub.audit.routes import router as audit_router
from services.hub.auth import require
from services.hub.config import HubSettings
from services.hub.context import Clock, HubContext
from services.hub.credentials.routes import router as credentials_router
from services.hub.errors import install_handlers
from services.hub.limits import BodyLimit, FailureLimit
from services.hub.mailbox.routes import router as mailbox_router
from services.hub.metrics import HubMetrics, Observe
from services.hub.nodes.routes import router as nodes_router
from services.hub.queries.routes import router as queries_router
from services.hub.queries.vault import KeyVault
from services.hub.results.routes import router as results_router
from services.hub.store.base import utcnow
from services.hub.store.db import Database
from services.hub.store.migrate import upgrade
from services.hub.tasks import service as tasks
from services.hub.tasks.routes import router as tasks_router
from services.hub.transparency.routes import VERSION
from services.hub.transparency.routes import router as public_router

log = logging.getLogger("crosstally.hub")
DESCRIPTION = """\
Coordinates privacy-preserving cross-agency queries. Agency nodes pull tasks, relay sealed
row sets through the hub's mailbox and send the joiner's encrypted tally; the hub decrypts,
applies disclosure control and releases tables to the analysts an agreement names.
Every route except `/healthz` and `/v1/transparency` needs
`Authorization: Bearer <token>`.
"""


def sweep_once(hub: HubContext) -> None:
    with hub.db.transaction() as session:
        tasks.sweep(session=session, now=hub.now(), max_attempts=hub.settings.max_attempts)


async def _sweep_forever(hub: HubContext) -> None:
    while True:
        await asyncio.sleep(hub.settings.sweep_seconds)
        try:
            await run_in_threadpool(sweep_once, hub)
        except Exception:  # keep sweeping; the next round retries
            log.exception("sweep failed")


DOCS_ASSETS = "/docs/assets"


def serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package's files, so it works on an
    air-gapped network (FastAPI's default loads it from a CDN)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


def create_app(
    settings: HubSettings | None = None, *, clock: Clock = utcnow, background: bool = True
) -> FastAPI:
    """Build the hub. `background=False` leaves sweeping to the caller (tests drive time)."""
    settings = settings or HubSettings()
    db = Database(settings.database_url)
    hub = HubContext(settings=settings, db=db, vault=KeyVault(settings.kek()), clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(upgrade, db.engine)
        sweeper = asyncio.create_task(_sweep_forever(hub)) if background else None
        log.info("hub ready (%s store, %s)", db.engine.dialect.name, settings.environment)
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            db.dispose()

    app = FastAPI(
        title="crosstally hub",
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from the package, never from a CDN
        redoc_url=None,
    )
    serve_docs(app)
    app.state.hub = hub
    app.state.metrics = metrics = HubMetrics(db)
    app.state.auth_failures = FailureLimit(
        burst=settings.auth_failure_burst, per_minute=settings.auth_failures_per_minute
    )
    install_handlers(app)
    app.add_middleware(
        BodyLimit,
        json_limit=settings.max_json_bytes,
        blob_limit=settings.max_blob_bytes,
    )
    app.add_middleware(Observe, metrics=metrics)  # outermost: sees every response

    @app.get(
        "/metrics",
        include_in_schema=False,
        dependencies=[Depends(require("monitor", "admin"))],
    )
    def prometheus_metrics() -> Response:
        """Prometheus text format: queries and tasks by status, leases, relay bytes, step
        durations. Counts only, never data; but relay bytes are exact (with one query
        running they give a row set's size), so a monitor or admin credential is needed."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in (
        public_router,
        nodes_router,
        credentials_router,
        agreements_router,
        queries_router,
        results_router,
        tasks_router,
        mailbox_router,
        audit_router,
    ):
        app.include_router(router)
    return app
