"""A hub and the seven agency nodes as real processes run the three templates end to end.

Results equal the in-process protocol's; no request a node sent, and nothing in the hub's
database or log, holds an identifier or a recomputable function of one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crosstally.templates import TEMPLATES
from protocol.blinding import P256Engine
from protocol.driver import match_members, run_tally
from protocol.spec import QuerySpec, parse_spec
from services.agency_node.store import NodeStore
from tests.integration.cluster import Cluster, Extracts, cluster, write_extracts
from tests.integration.proxy import RecordingProxy
from tests.services.harness import agreement_for, template_spec
from tests.services.leakscan import Scanner, needles_for, without_category_labels

PEOPLE = 500
SEED = 5
AGENCIES = ("DCF", "JBCSSD", "CSDE", "DSS", "DOL", "DOC", "HIGHERED")


@dataclass
class Run:
    cluster: Cluster
    extracts: Extracts
    proxy: RecordingProxy
    specs: dict[str, QuerySpec]
    queries: dict[str, str]
    public_documents: list[dict[str, Any]]


@pytest.fixture(scope="module")
def engine() -> Iterator[P256Engine]:
    eng = P256Engine(workers=1)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory: Path = tmp_path_factory.mktemp("templates")
    extracts = write_extracts(directory / "extracts", people=PEOPLE, seed=SEED)
    documents = {name: template_spec(name) for name in TEMPLATES}
    agreements = [agreement_for(d) for d in documents.values()]
    from services.loopback import LoopbackHub
    from tests.integration.cluster import FAST_HUB

    hub = LoopbackHub(directory / "hub", settings=FAST_HUB)
    hub.start()
    proxy = RecordingProxy(hub.url)
    proxy.start()
    try:
        with cluster(
            directory, extracts, AGENCIES, agreements, hub=hub, hub_url_for_nodes=proxy.url
        ) as running:
            with running.api(running.operator) as api:
                queries = {name: api.submit(d).id for name, d in documents.items()}
                for query_id in queries.values():
                    detail = api.wait(query_id, timeout=600)
                    assert detail.status == "released", detail
            specs = {name: parse_spec(d) for name, d in documents.items()}
            public = [*documents.values(), *(t.model_dump(mode="json") for t in agreements)]
            yield Run(running, extracts, proxy, specs, queries, public)
    finally:
        proxy.stop()


def test_every_template_equals_the_in_process_protocol(run: Run, engine: P256Engine) -> None:
    with run.cluster.api(run.cluster.analyst) as api:
        for name, spec in run.specs.items():
            released = api.result(run.queries[name])
            expected = run_tally(spec, run.extracts.data, engine=engine)
            assert released.table == expected.result.released.to_dict(), name
            if spec.kind == "match":
                # The requester's node holds exactly the in-process match; the hub only a count.
                store = NodeStore(run.cluster.nodes["CSDE"].directory / "data" / "node.sqlite")
                assert store.members(run.queries[name]) == match_members(expected)


@pytest.fixture(scope="module")
def needles(run: Run, engine: P256Engine) -> dict[bytes, str]:
    return needles_for(run.specs.values(), run.extracts.data, engine)


def test_no_request_a_node_sent_holds_an_identifier(run: Run, needles: dict[bytes, str]) -> None:
    scanner = Scanner(needles)
    captured = run.proxy.captured
    senders = {c.node for c in captured}
    assert senders >= set(AGENCIES)
    assert sum(len(c.body) for c in captured) > 1_000_000  # the row sets went through it
    leaks = [
        f"{c.node} {c.method} {c.target}: {why}" for c in captured for why in scanner.find(c.wire())
    ]
    assert leaks == []


def test_the_hubs_database_and_log_hold_no_identifier(run: Run, needles: dict[bytes, str]) -> None:
    # Category words ("status" is an offense type) legitimately occur in the hub's JSON, and
    # so does whatever operators and administrators gave it (agreement dates are dates too).
    public = b"\n".join(json.dumps(d).encode() for d in run.public_documents)
    scanner = Scanner(
        {
            n: why
            for n, why in without_category_labels(needles, run.extracts.data).items()
            if n not in public
        }
    )
    hub_dir = run.cluster.hub.directory
    files = [p for p in hub_dir.iterdir() if p.name.startswith(("hub.sqlite", "hub.log"))]
    assert any(p.name == "hub.sqlite" for p in files) and any(p.name == "hub.log" for p in files)
    leaks = [f"{p.name}: {why}" for p in files for why in scanner.find(p.read_bytes())]
    assert leaks == []
