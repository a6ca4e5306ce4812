"""A loopback deployment for integration tests: hub, nodes, agreements, credentials."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosstally.demo import NODE_OF_AGENCY
from crosstally.extract import read_extract
from crosstally.synth import generate, write_world
from protocol.driver import NodeData
from services.hub_api import HubAPI
from services.loopback import LoopbackHub, LoopbackNode, enroll_all, start_all, stop_all
from services.wire import AgreementTerms
from tests.services.harness import ANALYST

FAST_NODE = {"poll_seconds": 2.0, "heartbeat_seconds": 1.0, "max_backoff_seconds": 2.0}
FAST_HUB = {"lease_seconds": "6", "sweep_seconds": "0.5", "long_poll_seconds": "2"}


@dataclass
class Extracts:
    """Synthetic agency CSVs and the records each node reads from them (via the same reader)."""

    paths: dict[str, Path]
    data: dict[str, NodeData]


def write_extracts(directory: Path, *, people: int, seed: int) -> Extracts:
    paths = write_world(generate(people=people, seed=seed), directory)
    by_node = {NODE_OF_AGENCY[code]: path for code, path in paths.items() if code != "truth"}
    data = {}
    for node, path in by_node.items():
        extract = read_extract(path)
        data[node] = NodeData(extract.records, extract.columns)
    return Extracts(by_node, data)


@dataclass
class Cluster:
    directory: Path
    hub: LoopbackHub
    nodes: dict[str, LoopbackNode]
    operator: str = ""
    analyst: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def api(self, token: str) -> HubAPI:
        return HubAPI(self.hub.url, token)

    def stop(self) -> None:
        stop_all([n.service for n in self.nodes.values()])
        stop_all([self.hub.service])


@contextlib.contextmanager
def cluster(
    directory: Path,
    extracts: Extracts,
    agencies: Sequence[str],
    agreements: Sequence[AgreementTerms],
    *,
    node_agreements: Mapping[str, Sequence[AgreementTerms]] | None = None,
    hub_url_for_nodes: str | None = None,
    database_url: str | None = None,
    hub: LoopbackHub | None = None,
    node_settings: Mapping[str, Any] | None = None,
    start: Sequence[str] | None = None,
) -> Iterator[Cluster]:
    """Start a hub (unless given) and `agencies`' nodes (or only those in `start`); record
    agreements at the hub, and at each node those it participates in (or `node_agreements`)."""
    hub = hub or LoopbackHub(directory / "hub", database_url=database_url, settings=FAST_HUB)
    if hub.service is None:
        hub.start()
    nodes = {
        a: LoopbackNode(
            a,
            directory / a,
            hub_url_for_nodes or hub.url,
            {"path": extracts.paths[a]},
            list((node_agreements or {}).get(a, [t for t in agreements if a in t.participants])),
            settings={**FAST_NODE, **(node_settings or {})},
        )
        for a in agencies
    }
    running = Cluster(directory, hub, nodes)
    try:
        enroll_all(hub, list(nodes.values()))
        with hub.admin() as api:
            for terms in agreements:
                api.create_agreement(terms)
            running.operator = api.issue("olga", "operator").token
            running.analyst = api.issue(ANALYST, "analyst").token
        start_all([n for a, n in nodes.items() if start is None or a in start])
        yield running
    finally:
        running.stop()
