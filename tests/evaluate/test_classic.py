"""Classic hub linkage: accuracy on generated pairs, one-to-one entities, deterministic passes."""

from __future__ import annotations

import dataclasses
import inspect
from collections import Counter

import pytest

from crosstally.classic import link_sources
from crosstally.classic.deterministic import PASSES
from crosstally.classic.prepare import prepare_source
from crosstally.synth import generate, make_pair
from protocol.records import PersonRecord


def f1(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float, float]:
    hits = len(found & truth)
    precision, recall = hits / len(found), hits / len(truth)
    return precision, recall, 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize(("left_ssn", "target"), [(True, 0.997), (False, 0.99)])
def test_classic_linkage_quality_on_generated_pairs(left_ssn: bool, target: float) -> None:
    left, right, truth = make_pair(left=1500, right=1500, overlap=0.5, seed=2026, left_ssn=left_ssn)
    hub = link_sources({"left": left, "right": right})
    found = hub.record_pairs("left", "right")
    precision, recall, score = f1(found, truth)
    assert score >= target, f"precision {precision:.4f} recall {recall:.4f} F1 {score:.4f}"
    # One-to-one: make_pair has no duplicates, so no record is in two links.
    assert len({a for a, _ in found}) == len(found) == len({b for _, b in found})
    rules = hub.rules()
    assert rules["name+dob"] > 0 and rules["model"] > 0
    assert (rules["ssn+dob"] > 0) == left_ssn
    assert set(rules) <= {p.name for p in PASSES} | {"model"}


def without(records: list[PersonRecord], *fields: str) -> list[PersonRecord]:
    return [dataclasses.replace(r, **dict.fromkeys(fields)) for r in records]


@pytest.mark.parametrize(
    ("dropped", "target"),
    [(("dob",), 0.98), (("address", "zip", "town"), 0.99), (("ssn",), 0.99)],
    ids=["no DOB (wage data)", "no address (benefits data)", "no SSN (K-12)"],
)
def test_fields_absent_from_one_extract_drop_their_comparisons(
    dropped: tuple[str, ...], target: float
) -> None:
    left, right, truth = make_pair(left=1500, right=1500, overlap=0.5, seed=2027)
    hub = link_sources({"left": left, "right": without(right, *dropped)})
    precision, recall, score = f1(hub.record_pairs("left", "right"), truth)
    assert score >= target, f"precision {precision:.4f} recall {recall:.4f} F1 {score:.4f}"
    assert hub.scores is not None
    compared = {c["output_column_name"] for c in hub.scores.model["comparisons"]}
    absent = {"dob": "dob", "address": "location", "ssn": "ssn"}[dropped[0]]
    assert absent not in compared and {"first_name", "last_name"} <= compared


@pytest.mark.skipif(
    "error_model" not in inspect.signature(make_pair).parameters,
    reason="make_pair has no realistic error model yet",
)
def test_classic_linkage_quality_on_a_realistic_pair() -> None:
    # Errors come together in careless records: two to four in one record.
    left, right, truth = make_pair(
        left=1500, right=1500, overlap=0.5, seed=2026, error_model="realistic"
    )
    precision, recall, score = f1(
        link_sources({"l": left, "r": right}).record_pairs("l", "r"), truth
    )
    assert score >= 0.99, f"precision {precision:.4f} recall {recall:.4f} F1 {score:.4f}"


def test_a_source_groups_its_own_records_of_one_person() -> None:
    records = [
        PersonRecord("a", person_id="P1", first_name="Ann", last_name="Lee", dob="2001-01-01"),
        PersonRecord("b", person_id="P1", first_name="Anne", last_name="Lee", dob="2001-01-01"),
        PersonRecord("c", first_name="ANN", last_name="LEE", dob="2001-01-01"),
        PersonRecord("d", first_name="Bo", last_name="Kim", dob="2002-02-02", ssn="212-45-6781"),
        PersonRecord("e", first_name="Bob", last_name="Kim", dob="2002-02-02", ssn="212456781"),
        PersonRecord("f", first_name="Cy", last_name="Ng", dob="2003-03-03"),
    ]
    source = prepare_source("x", records)
    assert sorted(sorted(records[i].record_id for i in p) for p in source.persons) == [
        ["a", "b", "c"], ["d", "e"], ["f"],
    ]  # fmt: skip


def test_many_sources_merge_into_entities_with_one_person_per_source() -> None:
    world = generate(people=1500, seed=8)
    sources = {code: world.extracts[code] for code in ("dcf", "jbcssd", "dss")}
    hub = link_sources(sources)
    linked = [e for e in hub.entity_records() if len(e) > 1]
    assert len(linked) > 50
    wrong = 0
    for entity in linked:
        people = {world.record_person[s][r.record_id] for s, recs in entity.items() for r in recs}
        wrong += len(people) > 1
    assert wrong <= len(linked) * 0.01
    covered = Counter(s for e in hub.entities for s in e)
    assert covered == {s: len(hub.sources[s].persons) for s in sources}


def test_tiny_sources_with_nothing_to_train_on_still_link() -> None:
    ann = PersonRecord("a1", first_name="Ann", last_name="Lee", dob="2001-01-01", zip="06106")
    bo = PersonRecord("a2", first_name="Bo", last_name="Kim", dob="2002-02-02")
    typo = PersonRecord("b1", first_name="Ann", last_name="Leee", dob="2001-01-01", zip="06106")
    assert link_sources({"l": [ann, bo], "r": [typo]}).record_pairs("l", "r") == {("a1", "b1")}
    stranger = PersonRecord("b2", first_name="Zed", last_name="Quinn", dob="1999-09-09")
    assert link_sources({"l": [ann], "r": [stranger]}).record_pairs("l", "r") == set()
    assert link_sources({"l": [ann, bo], "r": []}).entities == [{"l": 0}, {"l": 1}]
