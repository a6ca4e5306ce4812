"""Assembling a node from its settings: extract, keys, store, curve engine, hub client, worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from crosstally.extract import ColumnMap, Extract, load_column_map, read_extract
from protocol.blinding import PooledEngine, make_engine
from services.agency_node.config import ConfigError, NodeSettings
from services.agency_node.hub_client import HubClient
from services.agency_node.keys import read_keys
from services.agency_node.metrics import NodeMetrics
from services.agency_node.steps import StepRunner
from services.agency_node.store import NodeStore
from services.agency_node.worker import Worker

log = logging.getLogger("crosstally.node")


def column_map(settings: NodeSettings) -> ColumnMap:
    source = settings.extract
    if source.column_map is not None:
        return load_column_map(source.column_map)
    attributes = tuple(source.attributes) if source.attributes is not None else None
    return ColumnMap(dict(source.columns), attributes)


def load_extract(settings: NodeSettings) -> Extract:
    """The agency's records through its column map; bad rows are counted, never fatal."""
    source = settings.extract
    mapping = column_map(settings)
    if source.url is not None:
        return read_extract(source.url, mapping, query=source.query)
    assert source.path is not None
    return read_extract(source.path, mapping)


class CurveEngines:
    """One curve engine per curve a query asks for, made on first use and closed at exit."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._engines: dict[str, PooledEngine] = {}

    def __call__(self, curve: str) -> PooledEngine:
        if curve not in self._engines:
            self._engines[curve] = make_engine(curve, self.workers)
        return self._engines[curve]

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()


@dataclass
class NodeRuntime:
    settings: NodeSettings
    extract: Extract
    store: NodeStore
    engines: CurveEngines
    client: HubClient
    worker: Worker
    metrics: NodeMetrics

    def close(self) -> None:
        self.client.close()
        self.engines.close()


def build(settings: NodeSettings, *, http: httpx.Client | None = None) -> NodeRuntime:
    """Everything a running node needs; raises ConfigError with what to fix."""
    try:
        keys = read_keys(settings.keys_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    extract = load_extract(settings)
    log.info(
        "%s: %d records read from %s (%d rows excluded, %d problems reported)",
        settings.agency,
        len(extract.records),
        extract.source,
        extract.excluded,
        len(extract.problems),
    )
    store = NodeStore(settings.store_path)
    engines = CurveEngines(settings.workers)
    runner = StepRunner(
        settings.agency,
        extract.records,
        extract.columns,
        keys=keys,
        store=store,
        engines=engines,
        spool=settings.spool_dir,
        part_bytes=settings.part_bytes,
    )
    metrics = NodeMetrics()
    client = HubClient(
        settings.hub_url,
        agency=settings.agency,
        token=settings.token(),
        max_backoff=settings.max_backoff_seconds,
        client=http,
        metrics=metrics,
        verify=settings.hub_verify(),
    )
    worker = Worker(
        settings=settings, client=client, runner=runner, store=store, signing_key=keys.sign
    )
    runtime = NodeRuntime(settings, extract, store, engines, client, worker, metrics)
    metrics.watch(runtime)
    return runtime
