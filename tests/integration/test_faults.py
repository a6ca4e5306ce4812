"""Faults with real processes: a node killed mid-query, the hub restarted mid-query, a task
under an agreement the node never signed. Each query either completes with the same result
as the in-process protocol, or fails with a clear, audited reason."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol.blinding import P256Engine
from protocol.driver import run_tally
from protocol.spec import parse_spec
from services.hub_api import HubAPI, HubError
from services.loopback import LoopbackHub
from services.wire import QueryDetail
from tests.integration.cluster import FAST_HUB, Cluster, Extracts, cluster, write_extracts
from tests.services.databases import postgres_database
from tests.services.harness import agreement_for, template_spec

PEOPLE = 600
SEED = 8
PAIR = ("DCF", "JBCSSD")
# min_cell 1 shows every count, so a broken linkage (say, a node that forgot its secret)
# cannot hide behind suppressed cells.
CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Extracts:
    return write_extracts(tmp_path_factory.mktemp("extracts"), people=PEOPLE, seed=SEED)


@pytest.fixture(scope="module")
def expected(extracts: Extracts) -> dict[str, object]:
    """The in-process protocol's released table for crossover youth on the same extracts."""
    engine = P256Engine(workers=1)
    try:
        table = run_tally(parse_spec(CROSSOVER), extracts.data, engine=engine).result.released
        assert table.total.count, "the fault tests need a non-empty crossover population"
        return table.to_dict()
    finally:
        engine.close()


def wait_for(
    api: HubAPI, query_id: str, done: Callable[[QueryDetail], bool], timeout: float = 120
) -> QueryDetail:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = api.query(query_id)
        if done(detail):
            return detail
        assert detail.status in ("running", "held"), detail
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting on query {query_id}")


def task_done(node: str, kind: str) -> Callable[[QueryDetail], bool]:
    return lambda d: any(t.node == node and t.kind == kind and t.status == "done" for t in d.tasks)


def task_queued(node: str, kind: str) -> Callable[[QueryDetail], bool]:
    return lambda d: any(
        t.node == node and t.kind == kind and t.status == "queued" for t in d.tasks
    )


def released(running: Cluster, query_id: str) -> dict[str, object]:
    with running.api(running.operator) as api:
        detail = api.wait(query_id, timeout=180)
    assert detail.status == "released", detail
    with running.api(running.analyst) as api:
        return api.result(query_id).table


@pytest.fixture
def crossover(tmp_path: Path, extracts: Extracts) -> Iterator[Cluster]:
    """Hub and the DCF and JB-CSSD nodes, configured; only DCF running at first."""
    terms = agreement_for(CROSSOVER)
    with cluster(tmp_path, extracts, PAIR, [terms], start=["DCF"]) as running:
        yield running


def test_a_node_killed_mid_query_resumes_with_the_same_result(
    crossover: Cluster, expected: dict[str, object]
) -> None:
    dcf, jj = crossover.nodes["DCF"], crossover.nodes["JBCSSD"]
    assert dcf.service is not None
    with crossover.api(crossover.operator) as api:
        query = api.submit(CROSSOVER)
        wait_for(api, query.id, task_done("DCF", "start"))
        dcf.service.kill()  # SIGKILL: DCF's per-query secret survives only in its store
        jj.start()
        wait_for(api, query.id, task_queued("DCF", "forward"))  # JB-CSSD's rows wait for DCF
        assert api.query(query.id).status == "running"
        dcf.start()
    assert released(crossover, query.id) == expected


def test_a_hub_restarted_mid_query_finishes_with_the_same_result(
    tmp_path: Path, extracts: Extracts, expected: dict[str, object]
) -> None:
    """On PostgreSQL, the production store; the query's sealed key survives the restart."""
    terms = agreement_for(CROSSOVER)
    with postgres_database() as url:
        hub = LoopbackHub(tmp_path / "hub", database_url=url, settings=FAST_HUB)
        with cluster(tmp_path, extracts, PAIR, [terms], hub=hub, start=["DCF"]) as running:
            with running.api(running.operator) as api:
                query = api.submit(CROSSOVER)
                wait_for(api, query.id, task_done("DCF", "start"))
            assert hub.service is not None
            hub.service.kill()
            running.nodes["JBCSSD"].start()  # backs off until the hub is back
            time.sleep(1)
            hub.start()
            assert released(running, query.id) == expected


def test_a_task_under_an_unsigned_agreement_is_refused_and_audited(
    tmp_path: Path, extracts: Extracts
) -> None:
    document = template_spec("crossover-youth", agreement="DSA-2099-001")
    terms = agreement_for(document)
    only_dcf = {"DCF": [terms], "JBCSSD": []}
    with cluster(tmp_path, extracts, PAIR, [terms], node_agreements=only_dcf) as running:
        with running.api(running.operator) as api:
            query = api.submit(document)
            detail = api.wait(query.id, timeout=120)
        assert detail.status == "failed"
        assert detail.error == "refused by JBCSSD: JBCSSD has not signed agreement DSA-2099-001"
        released = "failed: refused by JBCSSD.*will not be released"
        with running.api(running.analyst) as api, pytest.raises(HubError, match=released):
            api.result(query.id)
        with running.hub.admin() as api:
            actions = [(e["action"], e["actor"]) for e in api.audit(query.id)]
            assert ("task.refused", "node:JBCSSD") in actions
            assert ("query.failed", "hub") in actions and ("key.destroyed", "hub") in actions
            assert api.verify_audit().ok
        log = running.nodes["JBCSSD"].directory / "data" / "node.sqlite"
        from services.agency_node.store import NodeStore

        refusals = [e for e in NodeStore(log).outbound() if e.kind == "refuse"]
        assert refusals and refusals[0].query_id == query.id
