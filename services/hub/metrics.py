"""The hub's Prometheus metrics (`GET /metrics`) and the middleware that meters the relay
and gives every log line of a request its query and step.

Counts of queries and tasks come from the store at scrape time, so they survive restarts;
leases, relay bytes and step durations are counted by this process since it started.
Nothing here carries a record value, a token or a query's result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from threading import Lock
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.hub.queries.models import Query
from services.hub.store.db import Database
from services.hub.tasks.models import Task
from services.logs import log_context
from services.wire import QueryStatus, TaskKind, TaskStatus

QUERY_STATUSES: tuple[QueryStatus, ...] = (
    "running", "held", "released", "failed", "cancelled", "purged",
)  # fmt: skip
TASK_STATUSES: tuple[TaskStatus, ...] = ("queued", "leased", "held", "done", "failed", "cancelled")
TASK_KINDS: tuple[TaskKind, ...] = ("start", "forward", "join")
# A step runs from a fraction of a second (a small forward) to hours (a million rows).
STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600)

_QUERY_PATH = re.compile(r"^/v1/(?:node/)?queries/(?P<query_id>[A-Za-z0-9_-]+)")
_MAILBOX_PATH = re.compile(r"^/v1/node/mailbox/(?P<query_id>[A-Za-z0-9_-]+)/(?P<step>[^/?]+)")
_TALLY_PATH = re.compile(r"^/v1/node/queries/[A-Za-z0-9_-]+/tally$")


class _StoreCollector(Collector):
    """Queries by status and tasks by kind and status, read from the store when scraped."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.transaction() as session:
            by_status = dict(
                session.execute(select(Query.status, func.count()).group_by(Query.status)).all()
            )
            tasks = session.execute(
                select(Task.kind, Task.status, func.count()).group_by(Task.kind, Task.status)
            ).all()
        queries = GaugeMetricFamily(
            "crosstally_hub_queries", "Queries in the store by status", labels=["status"]
        )
        for query_status in QUERY_STATUSES:
            queries.add_metric([query_status], float(by_status.get(query_status, 0)))
        yield queries
        counts = {(kind, status): n for kind, status, n in tasks}
        gauge = GaugeMetricFamily(
            "crosstally_hub_tasks",
            "Tasks in the store by kind and status (status leased: leases held by nodes now)",
            labels=["kind", "status"],
        )
        for kind in TASK_KINDS:
            for status in TASK_STATUSES:
                gauge.add_metric([kind, status], float(counts.get((kind, status), 0)))
        yield gauge


class HubMetrics:
    """One registry per app, so several hubs in one process (tests) never share counts."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.leases = Counter(
            "crosstally_hub_task_leases",
            "Task leases granted to nodes (a task re-offered after expiry counts again)",
            ["kind"],
            registry=self.registry,
        )
        self.steps = Counter(
            "crosstally_hub_steps",
            "Leased steps that ended, by how: done, fail, refuse or hold",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "crosstally_hub_step_duration_seconds",
            "From a task's lease to the node's report that the step is done",
            ["kind"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.relay_bytes = Counter(
            "crosstally_hub_relay_bytes",
            "Bytes relayed: sealed row set parts and tallies, into and out of the hub",
            ["direction", "what"],
            registry=self.registry,
        )
        for direction, what in (("in", "rows"), ("out", "rows"), ("in", "tally")):
            self.relay_bytes.labels(direction, what)  # a zero is a reading too
        self.registry.register(_StoreCollector(db))
        self._leased: dict[int, tuple[str, float]] = {}
        self._lock = Lock()

    def leased(self, task_id: int, kind: str) -> None:
        self.leases.labels(kind).inc()
        with self._lock:
            self._leased[task_id] = (kind, time.monotonic())

    def ended(self, task_id: int, outcome: str) -> None:
        """The node reported on a lease this process granted (restarts forget leases)."""
        with self._lock:
            started = self._leased.pop(task_id, None)
        if started is None:
            return
        kind, at = started
        self.steps.labels(kind, outcome).inc()
        if outcome == "done":
            self.step_seconds.labels(kind).observe(time.monotonic() - at)


def get_metrics(request: Request) -> HubMetrics:
    metrics = request.app.state.metrics
    assert isinstance(metrics, HubMetrics)
    return metrics


Metrics = Annotated[HubMetrics, Depends(get_metrics)]


def _relayed(method: str, path: str) -> tuple[str, str] | None:
    """(direction, what) for a request that carries a row set part or a tally."""
    if path.startswith("/v1/node/mailbox/"):
        return ("in", "rows") if method == "PUT" else ("out", "rows")
    if method == "POST" and _TALLY_PATH.match(path):
        return ("in", "tally")
    return None


def _context_of(path: str) -> dict[str, str]:
    match = _MAILBOX_PATH.match(path) or _QUERY_PATH.match(path)
    if match is None:
        return {}
    return {k: v for k, v in match.groupdict().items() if v}


class Observe:
    """Binds each request's query and step to its log lines and counts relayed bytes."""

    def __init__(self, app: ASGIApp, *, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        relayed = _relayed(scope.get("method", ""), path)
        size, status = 0, 500

        async def counting_receive() -> Message:
            nonlocal size
            message = await receive()
            if relayed is not None and relayed[0] == "in":
                size += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal size, status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif relayed is not None and relayed[0] == "out":
                size += len(message.get("body", b""))
            await send(message)

        with log_context(**_context_of(path)):
            await self.app(scope, counting_receive, counting_send)
        if relayed is not None and status < 300 and size:
            self.metrics.relay_bytes.labels(*relayed).inc(size)
