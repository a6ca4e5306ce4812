"""The node's small local API (loopback only): health, metrics, held queries, agreements,
the outbound log."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.agency_node.runtime import NodeRuntime


def create_admin_app(runtime: NodeRuntime, *, start_worker: bool = True) -> FastAPI:
    """The admin API; its lifespan runs the pull loop in a background thread."""
    stop = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(
            target=runtime.worker.run, args=(stop,), name="pull-loop", daemon=True
        )
        if start_worker:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            # A step in progress may finish (its state is persisted either way); an idle
            # long poll holds nothing, so the process need not wait for it to return.
            if start_worker and runtime.worker.status.state == "working":
                thread.join(timeout=30)
            runtime.close()

    app = FastAPI(title=f"crosstally node {runtime.settings.agency} (local admin)")
    app.router.lifespan_context = lifespan

    @app.get("/healthz")
    def health() -> JSONResponse:
        """Whether the node can work, and what the pull loop is doing; no record data.

        `status` is ok, starting, degraded (the last exchange with the hub failed) or
        failing (no successful contact for a few poll intervals, or several failed polls
        in a row); failing answers 503, so any HTTP health check sees it.
        """
        worker = runtime.worker
        status = worker.status
        verdict = worker.health()
        body = {
            "status": verdict,
            "agency": runtime.settings.agency,
            "worker": status.state,
            "current": status.current,
            "tasks_done": status.tasks_done,
            "last_contact": status.last_contact,
            "last_error": status.last_error,
            "last_error_at": status.last_error_at,
            "failed_polls": status.failures,
            "stale_after_seconds": worker.stale_after.total_seconds(),
            "records": len(runtime.extract.records),
            "excluded_rows": runtime.extract.excluded,
            "checked_at": dt.datetime.now(dt.UTC),
        }
        code = 503 if verdict == "failing" else 200
        return JSONResponse(jsonable_encoder(body), status_code=code)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format: steps run, rows and bytes sent, errors, health, last
        contact; counts only, never a record."""
        body = generate_latest(runtime.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/held")
    def held(all: bool = False) -> list[dict[str, Any]]:
        """Queries held for the data steward (decide with `crosstally node approve|reject`):
        those whose query is still open at the hub, or with `all` also those that ended
        (`pending` is false for them). `brief` says what each asks of this agency: its
        cohorts and their `where`, the columns read here, the group-by terms, partners,
        joiner, and the node's copy of the agreement in words (`agreement_terms`)."""
        return [h.content() for h in runtime.store.held(include_ended=all)]

    @app.get("/agreements")
    def agreements() -> dict[str, Any]:
        """The agreements the node holds now (node.toml and its agreements directory, re-read
        when a file there changes), and agreement files it ignores, with why."""
        book = runtime.worker.agreements
        held = book.current()
        return {
            "agreements": [a.model_dump(mode="json") for a in held],
            "ignored": [{"path": str(b.path), "problem": b.problem} for b in book.unreadable],
        }

    @app.get("/partner-keys")
    def partner_keys() -> dict[str, Any]:
        """Partners' keys pinned here, and changed keys the hub sent that wait for the
        steward (`crosstally node trust`); fingerprints only."""
        store = runtime.store
        return {
            "pinned": [k.content() for k in store.partner_keys().values()],
            "changes": [k.content() for k in store.key_changes()],
        }

    @app.get("/outbound")
    def outbound(after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Everything that left this node: query, step, recipient, bytes, rows; never contents."""
        return [e.__dict__ for e in runtime.store.outbound(after=after, limit=limit)]

    @app.get("/outbound/verify")
    def verify() -> dict[str, Any]:
        return runtime.store.verify_outbound().__dict__

    return app
