"""The hub's release rules per agreement (issue 13, finding 4), with real nodes on SQLite and
PostgreSQL: differencing refused, minimum sizes, the privacy budget, coarse audit sizes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from protocol.blinding import P256Engine
from protocol.driver import NodeData, reference_tally
from protocol.spec import parse_spec
from services.differencing import definition, near_release
from services.hub.app import create_app
from services.hub.audit.models import AuditEntry
from services.hub.releases.models import Release
from services.wire import AgreementTerms, CohortTerms, PrivacyTerms
from tests.services.conftest import hub_settings
from tests.services.harness import (
    VALID_FROM,
    VALID_UNTIL,
    HubHarness,
    InProcessNode,
    MutableClock,
    agreement_for,
    drive,
    make_node,
    template_spec,
)

PAIR = ("DCF", "JBCSSD")
SELECTED = "(substantiated or placed) and first_contact != '{}'"
NOBODY = "1900-01-01"  # a first-contact date nobody has


def crossover(where: str) -> dict[str, Any]:
    document = template_spec("crossover-youth", disclosure={"min_cell": 1})
    cohorts = {**document["cohorts"], "dcf": {"node": "DCF", "where": where}}
    return {**document, "cohorts": cohorts}


def open_filter(**changes: Any) -> AgreementTerms:
    """The crossover agreement with DCF's filter left open (any filter over its columns)."""
    terms = agreement_for(crossover(SELECTED.format(NOBODY)))
    cohorts = {**(terms.cohorts or {}), "dcf": CohortTerms(node="DCF")}
    window = {"as_of_from": VALID_FROM, "as_of_until": VALID_UNTIL}
    return terms.model_copy(update={"cohorts": cohorts, **window, **changes})


def nodes_for(
    hub: HubHarness,
    terms: AgreementTerms,
    world: dict[str, NodeData],
    engine: P256Engine,
    tmp: Path,
) -> list[InProcessNode]:
    hub.agree(terms)
    return [make_node(hub, a, world[a], tmp, engine=engine, agreements=[terms]) for a in PAIR]


@pytest.fixture(scope="module")
def one_person(world: dict[str, NodeData]) -> str:
    """A first-contact date that takes exactly one person out of the crossover population."""
    base = reference_tally(parse_spec(crossover(SELECTED.format(NOBODY))), world).population
    dates = sorted(
        {
            r.value("first_contact") or ""
            for r in world["DCF"].records
            if r.value("substantiated") == "Y" or r.value("placed") == "Y"
        }
        - {""}
    )
    for date in dates:
        spec = parse_spec(crossover(SELECTED.format(date)))
        if reference_tally(spec, world).population == base - 1:
            return date
    raise AssertionError("no first-contact date singles out one person in this world")


def refused(hub: HubHarness, document: dict[str, Any]) -> str:
    r = hub.client.post("/v1/queries", json={"spec": document}, headers=hub.operator)
    assert r.status_code == 403, r.text
    message: str = r.json()["error"]["message"]
    return message


def test_two_queries_a_first_contact_date_apart_are_not_both_released(
    hub: HubHarness,
    world: dict[str, NodeData],
    engine: P256Engine,
    tmp_path: Path,
    one_person: str,
) -> None:
    # The finding: both queries are permitted and their populations differ by one named
    # person, so releasing both tells whether that person is in the other agency's system.
    first, second = crossover(SELECTED.format(NOBODY)), crossover(SELECTED.format(one_person))
    nodes = nodes_for(hub, open_filter(), world, engine, tmp_path)
    query = hub.submit(first)
    assert drive(hub, nodes, query["id"])["status"] == "released"
    message = refused(hub, second)
    assert f"differs from released query {query['id']}" in message
    assert "only its constants changed" in message and "differencing" in message
    # One more conjunct and another as_of are near too; another filter altogether is not.
    assert "one conjunct more" in refused(
        hub, crossover(SELECTED.format(NOBODY) + " and sex == 'F'")
    )
    assert "as_of is 2026-07-01" in refused(hub, {**first, "as_of": "2026-07-01"})
    other = hub.submit(crossover("substantiated"))
    assert drive(hub, nodes, other["id"])["status"] == "released"


@pytest.mark.sqlite_only
def test_near_queries_run_side_by_side_release_only_the_first(
    hub: HubHarness,
    world: dict[str, NodeData],
    engine: P256Engine,
    tmp_path: Path,
    one_person: str,
) -> None:
    nodes = nodes_for(hub, open_filter(), world, engine, tmp_path)
    first = hub.submit(crossover(SELECTED.format(NOBODY)))
    second = hub.submit(crossover(SELECTED.format(one_person)))  # nothing released yet
    assert drive(hub, nodes, first["id"])["status"] == "released"
    status = drive(hub, nodes, second["id"])
    assert status["status"] == "failed"
    assert f"differs from released query {first['id']}" in status["error"]
    gone = hub.client.get(f"/v1/queries/{second['id']}/result", headers=hub.analyst)
    assert gone.status_code == 410 and "will not be released" in gone.json()["error"]["message"]
    assert hub.rows(Release) == 1


@pytest.mark.sqlite_only
def test_a_population_below_the_minimum_is_not_released_and_its_size_not_said(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = nodes_for(hub, open_filter(min_population=100_000), world, engine, tmp_path)
    query = hub.submit(crossover(SELECTED.format(NOBODY)))
    status = drive(hub, nodes, query["id"])
    assert status["status"] == "failed"
    assert "fewer persons than agreement" in status["error"]
    assert "min_population of 100,000" in status["error"]
    population = reference_tally(parse_spec(crossover(SELECTED.format(NOBODY))), world).population
    assert str(population) not in status["error"]
    assert hub.rows(Release) == 0


@pytest.mark.sqlite_only
def test_a_cohort_below_the_minimum_is_refused_by_its_node_before_a_row_leaves(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = nodes_for(hub, open_filter(min_cohort=100_000), world, engine, tmp_path)
    query = hub.submit(crossover(SELECTED.format(NOBODY)))
    status = drive(hub, nodes, query["id"])
    assert status["status"] == "failed"
    assert "cohort dcf holds fewer persons than agreement" in status["error"]
    assert "min_cohort of 100,000" in status["error"]
    # The refusing node sent no row set: its outbound log holds the refusal only.
    dcf = next(n for n in nodes if n.agency == "DCF")
    kinds = {entry.kind for entry in dcf.store.outbound()}
    assert kinds == {"refuse"}, kinds
    assert hub.rows(Release) == 0


def test_with_privacy_on_near_queries_are_noised_within_a_budget_that_survives_a_restart(
    hub: HubHarness,
    world: dict[str, NodeData],
    engine: P256Engine,
    tmp_path: Path,
    one_person: str,
    database_url: str,
) -> None:
    privacy = PrivacyTerms(epsilon_per_release=0.5, epsilon_budget=1.0)
    nodes = nodes_for(hub, open_filter(privacy=privacy), world, engine, tmp_path)
    documents = [crossover(SELECTED.format(d)) for d in (NOBODY, one_person)]
    for document in documents:
        query = hub.submit(document)
        assert drive(hub, nodes, query["id"])["status"] == "released"
        table = hub.result(query["id"])["table"]
        assert table["noise"]["mechanism"] == "discrete_laplace"
        assert table["noise"]["scale"] == 2.0 and table["noise"]["epsilon"] == 0.5
        assert any("noise" in note for note in table["notes"])
        shown = [c["count"] for c in table["cells"] if c["count"] is not None]
        if table["total"]["count"] is not None and len(shown) == len(table["cells"]):
            assert table["total"]["count"] == sum(shown)  # the total sums the noisy cells
    message = refused(hub, documents[0])
    assert "privacy budget is spent" in message and "epsilon 1 of 1" in message
    # The budget lives in the hub's database: a restarted hub refuses the same way.
    with TestClient(
        create_app(hub_settings(database_url), clock=MutableClock(), background=False)
    ) as client:
        again = HubHarness(client, MutableClock())
        again._tokens = dict(hub._tokens)  # same database, same credentials
        assert "privacy budget is spent" in refused(again, documents[1])


@pytest.mark.sqlite_only
def test_the_audit_log_records_relay_sizes_in_coarse_buckets(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = nodes_for(hub, open_filter(), world, engine, tmp_path)
    query = hub.submit(crossover(SELECTED.format(NOBODY)))
    assert drive(hub, nodes, query["id"])["status"] == "released"
    bucket = re.compile(r"^(under 1 KiB|\d+ [KMGT]iB-\d+ [KMGT]iB)$")
    with hub.db.transaction() as session:
        entries = list(session.query(AuditEntry).order_by(AuditEntry.seq))
    sized = [e for e in entries if e.action in ("relay.stored", "tally.received")]
    assert len(sized) == 2 * len(PAIR) + 1  # each cohort's two hops, and the tally
    for entry in sized:
        assert bucket.match(entry.detail["size"]), entry.detail
    assert not [e for e in entries if "bytes" in e.detail]


def near(earlier: dict[str, Any], asked: dict[str, Any]) -> list[str] | None:
    found = near_release(parse_spec(asked), [("q1", definition(parse_spec(earlier)))])
    return None if found is None else found[1]


def test_the_differencing_rule_recognises_small_steps_and_nothing_else() -> None:
    base = crossover("substantiated or placed")
    assert near(base, base) is None  # the same question again releases nothing new
    assert near(base, crossover("placed or substantiated")) is None  # the same persons
    assert near(base, crossover("(substantiated or placed) and sex == 'M'")) == [
        "cohort dcf's where has one conjunct more"
    ]
    assert near(crossover("substantiated or placed or ethnicity == 'x'"), base) == [
        "cohort dcf's where has one disjunct fewer"
    ]
    assert near(crossover(""), crossover("sex == 'M'")) == [
        "cohort dcf's where has one conjunct more"
    ]
    steps = near(base, {**base, "as_of": "2026-07-01", "disclosure": {"min_cell": 5}})
    assert steps is not None and len(steps) == 2 and "min_cell is 5, not 1" in steps[1]
    assert near(base, crossover("sex == 'M'")) is None  # another question
    assert near(base, {**crossover("sex == 'M'"), "as_of": "2026-07-01"}) is None
    assert near(base, {**base, "cohorts": {**base["cohorts"], "jj": {"node": "JBCSSD"}}}) == [
        "cohort jj's where has one conjunct fewer"
    ]
