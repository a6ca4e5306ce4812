"""The node's Prometheus metrics, served by its loopback admin app at `GET /metrics`.

Steps and errors are counted by the hub client as they happen (since the process
started); rows and bytes sent come from the outbound log, so they survive restarts; health,
last contact and the extract's size are read from the running node when scraped.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from threading import Lock
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from services.agency_node.runtime import NodeRuntime

HEALTH_STATES = ("ok", "starting", "degraded", "failing")
STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600)


class NodeMetrics:
    """Counters the hub client feeds; one registry per node so tests can run several."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.steps = Counter(
            "crosstally_node_steps",
            "Steps this node ran or declined, by kind and outcome (done, fail, refuse, hold)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "crosstally_node_step_duration_seconds",
            "From leasing a task to reporting it done",
            ["kind"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "crosstally_node_errors",
            "Failed exchanges with the hub (unreachable: after retries; refused: a 4xx answer)",
            ["kind"],
            registry=self.registry,
        )
        self.relay_bytes = Counter(
            "crosstally_node_relay_bytes",
            "Sealed bytes pushed to (out) and fetched from (in) the hub's relay",
            ["direction"],
            registry=self.registry,
        )
        for kind in ("hub_unreachable", "hub_refused"):
            self.errors.labels(kind)  # a zero is a reading too
        for direction in ("in", "out"):
            self.relay_bytes.labels(direction)
        self._leased: dict[int, tuple[str, float]] = {}
        self._lock = Lock()

    def leased(self, task_id: int, kind: str) -> None:
        with self._lock:
            self._leased[task_id] = (kind, time.monotonic())

    def ended(self, task_id: int, outcome: str) -> None:
        with self._lock:
            started = self._leased.pop(task_id, None)
        if started is None:
            return
        kind, at = started
        self.steps.labels(kind, outcome).inc()
        if outcome == "done":
            self.step_seconds.labels(kind).observe(time.monotonic() - at)

    def watch(self, runtime: NodeRuntime) -> None:
        """Also report the running node's state and its outbound log when scraped."""
        self.registry.register(_RuntimeCollector(lambda: runtime))


def _timestamp(value: dt.datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Callable[[], NodeRuntime]) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self.runtime()
        worker, status = runtime.worker, runtime.worker.status
        health = worker.health()
        gauge = GaugeMetricFamily(
            "crosstally_node_health", "1 for the node's current health", labels=["status"]
        )
        for state in HEALTH_STATES:
            gauge.add_metric([state], 1.0 if state == health else 0.0)
        yield gauge
        yield GaugeMetricFamily(
            "crosstally_node_last_contact_timestamp_seconds",
            "When the hub last answered (Unix time; 0 if never)",
            value=_timestamp(status.last_contact),
        )
        yield GaugeMetricFamily(
            "crosstally_node_last_error_timestamp_seconds",
            "When the last error happened (Unix time; 0 if none)",
            value=_timestamp(status.last_error_at),
        )
        yield GaugeMetricFamily(
            "crosstally_node_failed_polls", "Failed polls in a row", value=float(status.failures)
        )
        yield CounterMetricFamily(
            "crosstally_node_tasks_done", "Tasks completed", value=float(status.tasks_done)
        )
        yield GaugeMetricFamily(
            "crosstally_node_extract_records",
            "Records read from the extract",
            value=float(len(runtime.extract.records)),
        )
        yield GaugeMetricFamily(
            "crosstally_node_extract_excluded_rows",
            "Extract rows excluded (unreadable or failing validation)",
            value=float(runtime.extract.excluded),
        )
        sent = runtime.store.outbound_totals()
        messages = CounterMetricFamily(
            "crosstally_node_outbound_messages",
            "Messages that left the node (outbound log), by kind",
            labels=["kind"],
        )
        rows = CounterMetricFamily(
            "crosstally_node_outbound_rows", "Rows in row sets and tallies sent", labels=["kind"]
        )
        size = CounterMetricFamily(
            "crosstally_node_outbound_bytes", "Bytes sent, by kind", labels=["kind"]
        )
        for kind, (count, row_count, byte_count) in sent.items():
            messages.add_metric([kind], float(count))
            rows.add_metric([kind], float(row_count))
            size.add_metric([kind], float(byte_count))
        yield messages
        yield rows
        yield size
