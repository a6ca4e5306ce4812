"""A node merges its own duplicate records that differ by one error, and never twins."""

from __future__ import annotations

import datetime as dt

import numpy as np

from protocol.cohort import WhereClause, prepare_cohort
from protocol.dedup import fuzzy_duplicate_pairs, record_token_ids
from protocol.linkage.keys import load_profile
from protocol.linkage.normalize import normalize_person
from protocol.records import PersonRecord

BASE = {"first_name": "Jonathan", "last_name": "Reyes", "dob": "2006-04-09", "zip": "06106",
        "ssn": "123-45-6780", "sex": "M"}  # fmt: skip


def records(*changes: dict[str, str | None]) -> list[PersonRecord]:
    return [PersonRecord(record_id=f"r{i}", **{**BASE, **c}) for i, c in enumerate(changes)]


def pairs(recs: list[PersonRecord]) -> list[tuple[int, int]]:
    persons = [normalize_person(r, today=dt.date(2026, 6, 30)) for r in recs]
    return fuzzy_duplicate_pairs(persons, load_profile("standard"))


def test_a_typo_duplicate_with_the_same_ssn_or_address_is_merged() -> None:
    assert pairs(records({}, {"first_name": "Jonahtan", "zip": "06511"})) == [(0, 1)]
    assert pairs(records({}, {"last_name": "Reyez", "ssn": None})) == [(0, 1)]
    assert pairs(records({}, {"first_name": "Jon", "ssn": None})) == [(0, 1)]  # a nickname
    assert pairs(records({}, {"first_name": "Justin", "ssn": None})) == []


def test_twins_and_namesakes_are_not_merged() -> None:
    twins = records({}, {"first_name": "Joshua", "ssn": "123-45-6781"})
    assert pairs(twins) == []
    moved_namesake = records({}, {"ssn": "555-12-3456", "zip": "06511", "dob": "2006-04-19"})
    assert pairs(moved_namesake) == []


def test_prepare_cohort_makes_one_row_of_merged_records() -> None:
    other = {"first_name": "Maria", "ssn": "234-56-7891"}
    recs = records({}, {"first_name": "Jonahtan", "zip": "06511"}, other)
    where = WhereClause("", [], as_of=dt.date(2026, 6, 30))
    prepared = prepare_cohort("c", recs, where=where, profile=load_profile("standard"))
    assert sorted(len(p) for p in prepared.persons) == [1, 2]


def test_record_ids_derived_in_chunks_equal_the_whole() -> None:
    recs = records({}, {"first_name": "Jonahtan", "ssn": None}, {"zip": None}, {"dob": "bad"})
    persons = [normalize_person(r, today=dt.date(2026, 6, 30)) for r in recs]
    profile = load_profile("standard")
    whole = record_token_ids(persons, profile)
    parts = [record_token_ids(persons[i : i + 2], profile, first=i) for i in (0, 2)]
    assert np.array_equal(np.concatenate(parts), whole)
    unused = whole[(whole < 0) & (whole >= -whole.size)]  # an unused slot's id is its number
    assert len(unused) and len(np.unique(unused)) == len(unused)
