"""The private tally equals the cleartext reference: histograms and links, 2 and 3 parties."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosstally.demo import nodes_from_extracts
from crosstally.synth import generate, make_pair, make_parties
from protocol.blinding import P256Engine, make_engine
from protocol.driver import (
    NodeData,
    ShuffleTrace,
    clear_token_ids,
    match_members,
    reference_entities,
    reference_tally,
    run_exact_count,
    run_tally,
    traced_entities,
)
from protocol.errors import ProtocolStateError
from protocol.linkage.candidates import agreement_patterns
from protocol.records import PersonRecord
from protocol.spec import parse_spec

COLUMNS = [
    "record_id",
    "first_name",
    "last_name",
    "dob",
    "sex",
    "ssn",
    "zip",
    "grp",
    "event",
    "flag",
]
GROUP_BYS: list[list[str]] = [
    [],
    ["a.sex"],
    ["a.sex", "a.grp"],
    ["b.grp"],
    ["a.sex", "b.grp"],
    ["a.grp", "entry_order(a.event, b.event)"],
    ["years_between(a.event, b.event)", "b.sex"],
]


def with_attributes(records: Sequence[PersonRecord], seed: int) -> list[PersonRecord]:
    rng = random.Random(seed)
    out = []
    for r in records:
        event = (
            ""
            if rng.random() < 0.1
            else f"{rng.randint(2005, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )
        attrs = {"grp": rng.choice("xyzw"), "event": event, "flag": rng.choice("YYYN")}
        out.append(dataclasses.replace(r, attributes=attrs))
    return out


def two_party(seed: int, left: int, right: int, left_ssn: bool) -> dict[str, NodeData]:
    a, b, _ = make_pair(left=left, right=right, overlap=0.6, seed=seed, left_ssn=left_ssn)
    return {
        "A": NodeData(with_attributes(a, seed), COLUMNS),
        "B": NodeData(with_attributes(b, seed + 1), COLUMNS),
    }


def spec_for(group_by: list[str], population: str = "a & b", **extra: Any) -> Any:
    return parse_spec({
        "name": "t", "agreement": "DSA-T", "kind": "tally", "as_of": "2026-06-30",
        "cohorts": {"a": {"node": "A", "where": "flag"}, "b": {"node": "B", "where": ""}},
        "population": population, "group_by": group_by,
        "levels": {"a.grp": ["x", "y", "z"], "b.grp": ["x", "y", "z"]},
        "disclosure": {"min_cell": 3}, **extra,
    })  # fmt: skip


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    left=st.integers(5, 40),
    right=st.integers(5, 40),
    left_ssn=st.booleans(),
    group_by=st.sampled_from(GROUP_BYS),
    population=st.sampled_from(["a & b", "a | b", "a - b"]),
)
def test_two_party_private_tally_equals_reference(
    engine: P256Engine,
    seed: int, left: int, right: int, left_ssn: bool, group_by: list[str], population: str,
) -> None:  # fmt: skip
    data = two_party(seed, left, right, left_ssn)
    spec = spec_for(group_by, population)
    run = run_tally(spec, data, engine=engine)
    ref = reference_tally(spec, data)
    assert run.result.histogram == ref.histogram
    assert run.result.population == ref.population


def as_ids(entities: list[dict[str, list[PersonRecord]]]) -> set[frozenset[tuple[str, str]]]:
    return {frozenset((label, recs[0].record_id) for label, recs in e.items()) for e in entities}


def private_links(run: Any, trace: ShuffleTrace) -> set[frozenset[tuple[str, str]]]:
    return as_ids(traced_entities(run, trace))


def reference_links(ref: Any) -> set[frozenset[tuple[str, str]]]:
    return as_ids(reference_entities(ref))


@pytest.mark.parametrize(("seed", "curve"), [(11, "p256"), (12, "p256"), (13, "x25519")])
def test_private_links_equal_reference_links_exactly(seed: int, curve: str) -> None:
    data = two_party(seed, 60, 50, left_ssn=seed % 2 == 0)
    spec = spec_for(["a.sex", "b.grp"], linkage={"curve": curve})
    trace = ShuffleTrace()
    with make_engine(curve, workers=1) as engine:
        run = run_tally(spec, data, engine=engine, shuffle=trace)
    ref = reference_tally(spec, data)
    assert private_links(run, trace) == reference_links(ref)
    assert run.result.histogram == ref.histogram
    assert any(len(e) == 2 for e in ref.links.entities)


def test_spooled_rows_through_the_worker_pool_give_the_same_links(tmp_path: Path) -> None:
    data = two_party(21, 420, 300, left_ssn=True)  # big enough for the worker pool
    spec = spec_for(["a.sex", "b.grp"], linkage={"curve": "x25519"})
    trace = ShuffleTrace()
    with make_engine("x25519", workers=2) as engine:
        run = run_tally(spec, data, engine=engine, shuffle=trace, spool=tmp_path)
    ref = reference_tally(spec, data)
    assert private_links(run, trace) == reference_links(ref)
    assert run.result.histogram == ref.histogram
    assert len(list(tmp_path.glob("rows-*.ctly"))) == 4  # two starts, two forwards


@pytest.fixture(scope="module")
def world_nodes() -> dict[str, NodeData]:
    return nodes_from_extracts(generate(people=700, seed=5).extracts)


THREE_PARTY = {
    "dcf": {"node": "DCF", "where": "substantiated or placed"},
    "jj": {"node": "JBCSSD", "where": "juvenile_cases >= 1"},
    "snap": {"node": "DSS", "where": "snap and age <= 21"},
}


@pytest.mark.parametrize(
    ("population", "group_by"),
    [
        ("dcf & jj & snap", []),
        ("(dcf | jj) - snap", ["jj.sex"]),
        ("dcf & (jj | snap)", ["dcf.sex", "snap.sex"]),
        (
            "dcf & jj",
            ["dcf.sex", "entry_order(dcf.first_contact, jj.first_contact)", "age_group(snap.dob)"],
        ),
        ("dcf | jj | snap", ["years_between(dcf.first_contact, jj.first_contact)"]),
    ],
)
def test_three_party_tally_end_to_end_equals_reference(
    engine: P256Engine,
    world_nodes: dict[str, NodeData], population: str, group_by: list[str],
) -> None:  # fmt: skip
    spec = parse_spec({
        "name": "three", "agreement": "DSA-T", "kind": "tally", "as_of": "2026-06-30",
        "cohorts": THREE_PARTY, "population": population, "group_by": group_by,
        "disclosure": {"min_cell": 5},
    })  # fmt: skip
    trace = ShuffleTrace()
    run = run_tally(spec, world_nodes, engine=engine, shuffle=trace)
    ref = reference_tally(spec, world_nodes)
    assert run.result.histogram == ref.histogram
    assert private_links(run, trace) == reference_links(ref)
    assert len(run.joiner.received) == 3


def test_a_linkage_node_can_be_the_joiner(engine: P256Engine) -> None:
    data = two_party(21, 30, 30, left_ssn=True)
    spec = spec_for(["a.sex", "b.grp"])
    run = run_tally(spec, data, engine=engine, joiner="LINKER")
    assert run.joiner.task.joiner == "LINKER"
    assert run.result.histogram == reference_tally(spec, data).histogram


def test_match_reveals_members_to_the_requester_only(engine: P256Engine) -> None:
    data = two_party(31, 40, 40, left_ssn=False)
    spec = parse_spec({**spec_for([]).raw, "kind": "match", "requester": "a", "group_by": []})
    run = run_tally(spec, data, engine=engine)
    ref = reference_tally(spec, data)
    expected = sorted(
        r.record_id
        for e in ref.links.entities
        if len(e) == 2
        for r in ref.prepared["a"].persons[e["a"]]
    )
    assert match_members(run) == expected
    assert run.result.histogram == {("all",): ref.population}
    with pytest.raises(Exception, match="only revealed to the requester"):
        run.joiner.members("b")


@pytest.mark.parametrize("structure", ["gcs", "raw"])
def test_exact_count_equals_cleartext_intersection_on_the_key(structure: str) -> None:
    data = two_party(41, 50, 50, left_ssn=True)
    spec = parse_spec({**spec_for([]).raw, "kind": "count", "group_by": [],
                       "linkage": {"rule": "exact", "exact_key": "name_dob"}})  # fmt: skip
    from protocol.driver import prepare_all

    prepared = prepare_all(spec, data)
    index = [g.name for g in spec.linkage.keys.groups].index("name_dob")
    start = spec.linkage.keys.group_slices[index][0]
    keys_a = {row[start] for row in prepared["a"].slots if row[start]}
    keys_b = {row[start] for row in prepared["b"].slots if row[start]}
    run = run_exact_count(spec, data, structure=structure)
    assert run.count == len(keys_a & keys_b)
    assert run.bytes_exchanged > 0


def test_a_node_refuses_a_query_on_another_curve(engine: P256Engine) -> None:
    data = two_party(51, 10, 10, left_ssn=True)
    spec = spec_for([], linkage={"curve": "x25519"})
    with pytest.raises(ProtocolStateError, match="runs the p256 engine but the query uses x25519"):
        run_tally(spec, data, engine=engine)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    population=st.sampled_from(["a & b & c", "(a | b) - c", "a & (b | c)", "a | b | c"]),
    group_by=st.sampled_from([[], ["a.sex", "c.grp"], ["entry_order(a.event, b.event)", "c.sex"]]),
)
def test_three_party_private_tally_equals_reference_on_random_corrupted_data(
    engine: P256Engine, seed: int, population: str, group_by: list[str]
) -> None:
    lists, _ = make_parties(records=25, parties=3, overlap=0.5, seed=seed)
    data = {
        node: NodeData(with_attributes(recs, seed + k), COLUMNS)
        for k, (node, recs) in enumerate(zip("ABC", lists, strict=True))
    }
    spec = parse_spec({
        "name": "t3", "agreement": "DSA-T", "kind": "tally", "as_of": "2026-06-30",
        "cohorts": {c: {"node": c.upper()} for c in "abc"}, "population": population,
        "group_by": group_by, "levels": {"c.grp": ["x", "y"]},
    })  # fmt: skip
    trace = ShuffleTrace()
    run = run_tally(spec, data, engine=engine, shuffle=trace)
    ref = reference_tally(spec, data)
    assert run.result.histogram == ref.histogram
    assert private_links(run, trace) == reference_links(ref)


def test_records_without_a_first_name_link_privately_as_in_the_reference(
    engine: P256Engine,
) -> None:
    # The realistic model leaves some first names missing or a placeholder ("Baby",
    # "Unknown"): only the paired groups let those records link, and the private run
    # must find exactly the reference's entities.
    errors: dict[str, tuple[str, ...]] = {}
    a, b, truth = make_pair(
        left=300, right=300, overlap=0.6, seed=8, left_ssn=False, error_model="realistic",
        errors_out=errors,
    )  # fmt: skip
    columns = [*COLUMNS, "address"]
    data = {
        "A": NodeData(with_attributes(a, 1), columns),
        "B": NodeData(with_attributes(b, 2), columns),
    }
    spec = spec_for(["a.sex"], "a | b", cohorts={"a": {"node": "A"}, "b": {"node": "B"}})
    trace = ShuffleTrace()
    run = run_tally(spec, data, engine=engine, shuffle=trace)
    ref = reference_tally(spec, data)
    assert private_links(run, trace) == reference_links(ref)
    # The data exercise the pairing: some true pairs lack a first name on one side, and
    # the joiner's candidates include pairs agreeing on the paired group.
    assert any(
        {"first_missing", "first_placeholder"} & {*errors.get(x, ()), *errors.get(y, ())}
        for x, y in truth
    )
    keys = spec.linkage.keys
    ids = {label: clear_token_ids(p.slots) for label, p in ref.prepared.items()}
    pair = ref.links.pairs[0]
    patterns = agreement_patterns(
        ids[pair.left], ids[pair.right], pair.ia, pair.ib, keys.group_slices, keys.paired_slices
    )
    bit = [g.name for g in keys.groups].index("no_first_dob_place")
    assert ((patterns >> bit) & 1).any()
