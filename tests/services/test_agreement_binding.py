"""Agreements bind the whole query, at the hub and at every node (issue 13, findings 1, 3 and 5;
issue 18, bug 4).

The node side is shown against a hub that misbehaves: the query is submitted as the agreement
permits, then its stored spec, ring or joiner is changed in the hub's database, as an operator
with database access could, and the nodes must refuse what the hub now hands them.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from protocol.blinding import P256Engine
from protocol.driver import NodeData
from protocol.errors import InvalidSpec
from protocol.spec import parse_spec
from services.agency_node.review import review
from services.governance import agreement_problems, read_spec, terms_for_spec
from services.hub.agreements.models import Agreement
from services.hub.queries.models import Query
from services.wire import AgreementTerms
from tests.services.harness import (
    ADMIN,
    AS_OF,
    VALID_FROM,
    VALID_UNTIL,
    HubHarness,
    InProcessNode,
    agreement_for,
    drive,
    make_node,
    template_spec,
)

CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})
TODAY = dt.date(2026, 7, 1)
REPO = Path(__file__).resolve().parents[2]

# Every group reads one identifier: its tokens are a dictionary for that identifier.
SINGLE_FIELD = {
    "name": "single",
    "groups": [
        {"name": f, "slots": 1, "templates": [[f]]}
        for f in ("dob", "zip", "first", "last", "ssn_tail4")
    ],
}
# The attack of finding 3: label `dcf` placed on JB-CSSD, grouped by "dcf . ethnicity".
RELABELLED = {
    **CROSSOVER,
    "cohorts": {
        "jj": {"node": "DCF", "where": "substantiated or placed"},
        "dcf": {"node": "JBCSSD", "where": "juvenile_cases >= 1"},
    },
    "group_by": ["dcf . ethnicity"],
    "levels": {"dcf . ethnicity": ["hispanic", "non_hispanic"]},
}


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return str(body["message"])


def submit(hub: HubHarness, document: dict[str, Any], **extra: Any) -> Any:
    return hub.client.post("/v1/queries", json={"spec": document, **extra}, headers=hub.operator)


def crossover_pair(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> list[InProcessNode]:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    return [
        make_node(hub, a, world[a], tmp_path, engine=engine, agreements=[terms])
        for a in ("DCF", "JBCSSD")
    ]


def tamper(hub: HubHarness, query_id: str, **values: Any) -> None:
    """What an operator with access to the hub's database could change after submission."""
    with hub.db.transaction() as session:
        session.execute(update(Query).where(Query.id == query_id).values(**values))


def rows_sent(node: InProcessNode, query_id: str) -> int:
    return sum(1 for e in node.store.outbound() if e.query_id == query_id and e.kind == "rows")


# Finding 1: the linkage is bound; a profile of one-identifier groups is refused everywhere.


def test_a_single_field_key_profile_is_refused_by_the_hub(hub: HubHarness) -> None:
    hub.agree(agreement_for(CROSSOVER))
    weak = {**CROSSOVER, "linkage": {"keys": SINGLE_FIELD}}
    message = error(submit(hub, weak), 422, "invalid_spec")
    assert "template of one identifier" in message and "'dob'" in message
    # A profile that passes the two-identifier rule but is not the agreed one is refused too.
    other = {**CROSSOVER, "linkage": {"keys": "no_dob"}}
    message = error(submit(hub, other), 403, "agreement_violation")
    assert "fixes the linkage key profile standard" in message and "not no_dob" in message
    threshold = {**CROSSOVER, "linkage": {"keys": "standard", "threshold": 0.01}}
    assert "fixes the linkage threshold 0.2, not 0.01" in error(
        submit(hub, threshold), 403, "agreement_violation"
    )


@pytest.mark.parametrize(
    ("linkage", "expected"),
    [
        ({"keys": SINGLE_FIELD}, "template of one identifier"),
        ({"keys": "no_dob"}, "fixes the linkage key profile standard"),
    ],
)
def test_a_key_profile_the_agreement_does_not_name_is_refused_by_the_node(
    hub: HubHarness,
    world: dict[str, NodeData],
    engine: P256Engine,
    tmp_path: Path,
    linkage: dict[str, Any],
    expected: str,
) -> None:
    nodes = crossover_pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    tamper(hub, query["id"], spec={**CROSSOVER, "as_of": AS_OF, "linkage": linkage})
    status = drive(hub, nodes, query["id"])
    assert status["status"] == "failed" and expected in status["error"], status
    assert all(rows_sent(n, query["id"]) == 0 for n in nodes)


# Finding 3: group-by terms are parsed, and their columns belong to the cohort's node.


def test_a_group_by_through_a_relabelled_cohort_is_refused_by_the_hub(hub: HubHarness) -> None:
    hub.agree(agreement_for(CROSSOVER))
    message = error(submit(hub, RELABELLED), 403, "agreement_violation")
    assert "gives cohort dcf to DCF, not JBCSSD" in message
    assert "gives cohort jj to JBCSSD, not DCF" in message
    assert "does not let JBCSSD contribute ethnicity" in message


def test_a_group_by_through_a_relabelled_cohort_is_refused_by_the_node(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = crossover_pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    tamper(hub, query["id"], spec={**RELABELLED, "as_of": AS_OF})
    status = drive(hub, nodes, query["id"])
    assert status["status"] == "failed", status
    assert "refused by DCF" in status["error"]
    assert "gives cohort dcf to DCF, not JBCSSD" in status["error"]
    assert all(rows_sent(n, query["id"]) == 0 for n in nodes)


def test_group_by_terms_are_compared_as_parsed() -> None:
    terms = agreement_for(CROSSOVER)
    spaced = {
        **CROSSOVER,
        "group_by": [
            "dcf . sex",
            "dcf .ethnicity",
            "entry_order( dcf.first_contact,jj.first_contact)",
        ],
        "levels": {"dcf .ethnicity": ["hispanic", "non_hispanic"]},
    }
    assert agreement_problems(terms, parse_spec(spaced), today=TODAY) == []
    fewer = {**CROSSOVER, "group_by": ["dcf.sex"]}
    left_out = agreement_problems(terms, parse_spec(fewer), today=TODAY)
    assert len(left_out) == 2 and "fixes grouping by dcf.ethnicity as well" in left_out[0]
    assert "fixes grouping by entry_order(dcf.first_contact, jj.first_contact)" in left_out[1]
    other_levels = {**CROSSOVER, "levels": {"dcf.ethnicity": ["hispanic", "other_kind"]}}
    (problem,) = agreement_problems(terms, parse_spec(other_levels), today=TODAY)
    assert "fixes the categories of dcf.ethnicity" in problem


def test_the_rest_of_the_query_is_bound_too() -> None:
    terms = agreement_for(CROSSOVER)
    spec = parse_spec(CROSSOVER)

    def problems(**changes: Any) -> str:
        return "; ".join(
            agreement_problems(terms, parse_spec({**CROSSOVER, **changes}), today=TODAY)
        )

    assert agreement_problems(terms, spec, today=TODAY) == []
    same_where = {
        "dcf": {"node": "DCF", "where": "(substantiated) or  placed"},
        "jj": CROSSOVER["cohorts"]["jj"],
    }
    assert problems(cohorts=same_where) == ""
    other_where = {"dcf": {"node": "DCF", "where": "placed"}, "jj": CROSSOVER["cohorts"]["jj"]}
    assert "fixes cohort dcf's where clause as 'substantiated or placed'" in problems(
        cohorts=other_where
    )
    assert "fixes the population 'dcf & jj', not 'dcf - jj'" in problems(population="dcf - jj")
    assert "permits as_of 2026-06-30 to 2026-06-30, not 2026-05-31" in problems(as_of="2026-05-31")
    assert "fixes no rounding, not 5" in problems(disclosure={"min_cell": 1, "rounding": 5})
    assert "fixes the linkage curve 'p256', not 'x25519'" in problems(
        linkage={"keys": "standard", "curve": "x25519"}
    )
    # min_cell is a floor: a larger one publishes less.
    assert problems(disclosure={"min_cell": 20}) == ""


# Finding 5: a node refuses a task whose ring or joiner names a party that did not sign.


@pytest.mark.parametrize("change", ["joiner", "ring"])
def test_a_node_refuses_a_task_that_names_a_party_who_did_not_sign(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path, change: str
) -> None:
    nodes = crossover_pair(hub, world, engine, tmp_path)
    stranger = make_node(hub, "DSS", world["DSS"], tmp_path, engine=engine, agreements=[])
    query = hub.submit(CROSSOVER)
    assert query["joiner"] == "JBCSSD"
    if change == "joiner":
        tamper(hub, query["id"], joiner="DSS")
    else:
        tamper(hub, query["id"], ring=["DCF", "DSS", "JBCSSD"])
    status = drive(hub, [*nodes, stranger], query["id"])
    assert status["status"] == "failed", status
    assert (
        "would exchange data with DSS, who did not sign agreement DSA-2024-007" in status["error"]
    )
    assert all(rows_sent(n, query["id"]) == 0 for n in [*nodes, stranger])


def test_a_stewards_approval_does_not_cover_a_stranger() -> None:
    spec = parse_spec(CROSSOVER)
    decision = review(
        spec,
        agency="DCF",
        agreements=[],
        on_unlisted="hold",
        approved=True,
        today=TODAY,
        ring=["DCF", "JBCSSD"],
        joiner="DSS",
        parties=["DCF", "JBCSSD", "DSS"],
    )
    assert decision.verdict == "refuse" and "holds no cohort of the query" in decision.reason


# Issue 18, bug 4: a where that does not parse says so, and where.


@pytest.mark.parametrize(
    ("where", "column"),
    [("substantiated or or placed", 18), ("(substantiated", 1), ('placed = "Y"', 8)],
)
def test_a_where_that_does_not_parse_is_a_malformed_query(
    hub: HubHarness, where: str, column: int
) -> None:
    hub.agree(agreement_for(CROSSOVER))
    cohorts = {**CROSSOVER["cohorts"], "dcf": {"node": "DCF", "where": where}}
    message = error(submit(hub, {**CROSSOVER, "cohorts": cohorts}), 422, "invalid_spec")
    assert f"cohort dcf's where clause {where!r} does not parse" in message
    assert f"at column {column}" in message
    assert "agreement" not in message and "contribute" not in message
    assert ("compare with ==, not =" in message) == (where == 'placed = "Y"')
    # A node handed the same spec says the same, rather than blaming the agreement.
    with pytest.raises(InvalidSpec, match=f"does not parse: .* at column {column}"):
        review(
            parse_spec({**CROSSOVER, "cohorts": cohorts}),
            agency="DCF",
            agreements=[agreement_for(CROSSOVER)],
            on_unlisted="refuse",
            approved=False,
            today=TODAY,
        )


def test_a_deeply_nested_where_is_refused_plainly(hub: HubHarness) -> None:
    hub.agree(agreement_for(CROSSOVER))
    cohorts = {**CROSSOVER["cohorts"], "dcf": {"node": "DCF", "where": "not " * 5000 + "placed"}}
    message = error(submit(hub, {**CROSSOVER, "cohorts": cohorts}), 422, "invalid_spec")
    assert "nests more than 32 levels" in message or "characters long" in message


# Agreements recorded before the binding terms, the example agreement and drafting.


def test_an_agreement_stored_before_the_binding_terms_loads_and_says_what_is_missing(
    hub: HubHarness,
) -> None:
    old = agreement_for(CROSSOVER).model_dump(mode="json")
    for term in ("cohorts", "population", "linkage", "as_of_from", "as_of_until", "levels"):
        del old[term]
    with hub.db.transaction() as session:
        session.add(
            Agreement(
                id=old["id"],
                terms=old,
                valid_until=VALID_UNTIL,
                destroy_results_after=None,
                created_at=hub.clock(),
                created_by="admin",
            )
        )
    listed = hub.client.get(f"/v1/agreements/{old['id']}", headers=hub.analyst)
    assert listed.status_code == 200 and listed.json()["cohorts"] is None
    message = error(submit(hub, CROSSOVER), 403, "agreement_violation")
    assert "does not bind cohorts, population, linkage, as_of_from, as_of_until" in message
    assert "crosstally admin agreement draft" in message
    # The same terms at a node refuse the same way.
    decision = review(
        parse_spec(CROSSOVER),
        agency="DCF",
        agreements=[AgreementTerms.model_validate(old)],
        on_unlisted="refuse",
        approved=False,
        today=TODAY,
    )
    assert decision.verdict == "refuse" and "does not bind cohorts" in decision.reason
    # A new agreement without them is not recorded at all.
    new = {**old, "id": "DSA-2024-099"}
    message = error(
        hub.client.post("/v1/admin/agreements", json=new, headers=ADMIN), 422, "invalid_request"
    )
    assert "must name cohorts, population, linkage, as_of_from, as_of_until" in message


def test_the_example_agreement_permits_the_crossover_template() -> None:
    path = REPO / "deploy" / "config" / "agreement.example.json"
    terms = AgreementTerms.model_validate(json.loads(path.read_text()))
    spec = read_spec(template_spec("crossover-youth", as_of="2026-06-30"))
    problems = agreement_problems(terms, spec, today=dt.date(2026, 7, 1))
    assert problems == [], (
        f"{path} no longer permits the crossover-youth template: {problems}. If a built-in key "
        "profile changed, `crosstally admin agreement draft crossover-youth --analyst ana` "
        "prints its new linkage.profile_sha256"
    )


def test_the_example_node_config_holds_the_example_agreement_as_signed() -> None:
    # The steward copies the hub's JSON into node.toml: the two examples must say the same.
    config = REPO / "deploy" / "config"
    signed = AgreementTerms.model_validate(
        json.loads((config / "agreement.example.json").read_text())
    )
    node = tomllib.loads((config / "node.example.toml").read_text())
    assert [AgreementTerms.model_validate(a) for a in node["agreements"]] == [signed]


def test_a_drafted_agreement_permits_a_spec_without_as_of_on_any_day_in_force() -> None:
    document = {k: v for k, v in CROSSOVER.items() if k != "as_of"}
    terms = terms_for_spec(parse_spec(document), valid_from=VALID_FROM, valid_until=VALID_UNTIL)
    assert (terms.as_of_from, terms.as_of_until) == (VALID_FROM, VALID_UNTIL)
    later = parse_spec({**document, "as_of": "2029-03-01"})
    assert agreement_problems(terms, later, today=dt.date(2029, 3, 1)) == []
