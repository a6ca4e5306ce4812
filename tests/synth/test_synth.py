"""Synthetic data generator: determinism, schema, calibration, error rates, truth, make_pair."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from crosstally.synth import (
    AGENCIES,
    AGENCY_ERRORS,
    CANONICAL_COLUMNS,
    ERROR_CLASSES,
    ErrorKind,
    SyntheticWorld,
    generate,
    make_pair,
    reference,
    write_world,
)
from crosstally.synth import dates as synth_dates

PEOPLE = 20_000
SEED = 2024
AGENCY_COLUMNS = {
    "dcf": [
        "substantiated",
        "allegation_count",
        "first_allegation_date",
        "first_substantiated_date",
        "placed",
        "first_placement_date",
        "first_contact",
    ],
    "jbcssd": ["juvenile_cases", "first_case_date", "first_offense_type", "first_contact"],
    "csde": ["enrolled", "grade", "at_risk", "diploma", "district", "free_reduced_meal"],
    "dss": ["snap", "snap_start_date", "medicaid"],
    "dol": ["employed", "quarters_employed", "wages_last_quarter"],
    "doc": ["incarcerated", "admission_date", "release_date"],
    "highered": ["enrolled_postsecondary", "training", "institution"],
}


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return generate(people=PEOPLE, seed=SEED)


@pytest.fixture(scope="module")
def written(world: SyntheticWorld, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_world(world, tmp_path_factory.mktemp("world"))


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def letters(text: str) -> str:
    return re.sub("[^A-Z]", "", text.upper())


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = write_world(generate(people=3000, seed=7), tmp_path / "a")
    second = write_world(generate(people=3000, seed=7), tmp_path / "b")
    other = write_world(generate(people=3000, seed=8), tmp_path / "c")
    assert set(first) == {*AGENCIES, "truth"}
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name
    assert first["csde"].read_bytes() != other["csde"].read_bytes()


def test_each_agency_file_has_canonical_then_agency_columns(written: dict[str, Path]) -> None:
    for code, extra in AGENCY_COLUMNS.items():
        header, rows = read_csv(written[code])
        assert header == [*CANONICAL_COLUMNS, *extra], code
        assert rows, code
        assert all(len(row) == len(header) for row in rows), code
        record_ids = [row[0] for row in rows]
        assert len(set(record_ids)) == len(record_ids), code


def test_csde_has_an_ssn_column_but_no_ssns(written: dict[str, Path]) -> None:
    header, rows = read_csv(written["csde"])
    column = header.index("ssn")
    assert {row[column] for row in rows} == {""}


def test_truth_covers_every_record_exactly_once(
    world: SyntheticWorld, written: dict[str, Path]
) -> None:
    header, truth = read_csv(written["truth"])
    assert header == ["agency", "record_id", "person_id", "errors"]
    truth_keys = [(agency, record_id) for agency, record_id, _, _ in truth]
    assert len(set(truth_keys)) == len(truth_keys)
    records = {(code, row[0]) for code in AGENCIES for row in read_csv(written[code])[1]}
    assert set(truth_keys) == records
    for agency, record_id, person_id, errors in truth[:: max(1, len(truth) // 500)]:
        assert person_id == world.global_id(world.record_person[agency][record_id])
        assert re.fullmatch(r"P\d{7}", person_id)
        assert set(filter(None, errors.split(";"))) <= set(ERROR_CLASSES)
    assert any(row[3] == "" for row in truth) and any("old_address" in row[3] for row in truth)


def test_extracts_are_person_records_matching_the_files(
    world: SyntheticWorld, written: dict[str, Path]
) -> None:
    records = world.extracts["doc"]
    header, rows = read_csv(written["doc"])
    assert len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        assert record.record_id == row[0]
        assert (record.ssn or "") == row[header.index("ssn")]
        assert record.value("incarcerated") == row[header.index("incarcerated")]


def test_crossover_youth_match_the_uconn_study(world: SyntheticWorld) -> None:
    facts = world.facts
    adult = facts.age >= 18
    involved = facts.dcf.involved
    assert 0.05 <= involved[adult].mean() <= 0.08
    assert facts.crossover[involved & adult].mean() == pytest.approx(0.17, abs=0.04)
    order = Counter(facts.entry_order[facts.crossover].tolist())
    total = sum(order.values())
    assert order["dcf_first"] / total == pytest.approx(0.90, abs=0.06)
    assert order["jj_first"] / total == pytest.approx(0.09, abs=0.05)
    years = facts.years_between
    assert np.nanmean(years[facts.entry_order == "dcf_first"]) == pytest.approx(8.0, abs=1.0)
    assert np.nanmean(years[facts.entry_order == "jj_first"]) == pytest.approx(1.0, abs=0.5)
    assert 0.04 <= facts.jbcssd.record.mean() <= 0.06


def test_extract_flags_agree_with_the_facts(world: SyntheticWorld) -> None:
    table = world.tables["dcf"]
    involved = (table.attributes["substantiated"] == "Y") | (table.attributes["placed"] == "Y")
    assert set(table.person_index[involved].tolist()) == set(
        np.flatnonzero(world.facts.dcf.involved).tolist()
    )
    jj = set(world.tables["jbcssd"].person_index.tolist())
    assert jj == set(np.flatnonzero(world.facts.jbcssd.record).tolist())


def test_other_rates_are_calibrated(world: SyntheticWorld) -> None:
    facts, age = world.facts, world.facts.age
    youth = (age >= 14) & (age <= 26)
    assert facts.disconnected[youth].mean() == pytest.approx(0.19, abs=0.04)
    school = facts.csde
    assert school.enrolled[school.record & (age <= 17)].mean() > 0.9
    assert school.free_reduced_meal[school.enrolled].mean() == pytest.approx(0.40, abs=0.05)
    assert facts.dss.snap[school.free_reduced_meal].mean() == pytest.approx(0.70, abs=0.04)
    assert 0.20 <= facts.dss.snap.mean() <= 0.25
    young_adult = (age >= 18) & (age <= 24)
    assert facts.highered.enrolled[young_adult].mean() == pytest.approx(0.45, abs=0.05)
    adult = age >= 18
    assert 0.005 <= facts.doc.record[adult].mean() <= 0.02
    assert facts.doc.incarcerated[adult].mean() < facts.doc.record[adult].mean()
    employed = [facts.dol.employed[(age >= lo) & (age <= hi)].mean() for lo, hi in
                ((14, 15), (16, 17), (18, 21), (22, 26))]  # fmt: skip
    assert employed == sorted(employed)
    assert employed[-1] > 0.6
    people = world.people
    white = (people.race == "white") & (people.ethnicity == "non_hispanic")
    assert white.mean() == pytest.approx(0.52, abs=0.02)
    assert (people.ethnicity == "hispanic").mean() == pytest.approx(0.26, abs=0.02)


def test_event_dates_are_consistent_with_dob(world: SyntheticWorld) -> None:
    facts, dob = world.facts, world.people.dob
    as_of = synth_dates.day(world.as_of)

    def years_after_birth(events: synth_dates.DateArray) -> npt.NDArray[np.float64]:
        has = ~np.isnat(events)
        assert (events[has] <= as_of).all()
        days: npt.NDArray[np.float64] = (events - dob)[has].astype(np.float64)
        return days / synth_dates.DAYS_PER_YEAR

    for events in (facts.dcf.first_allegation, facts.dcf.first_substantiated,
                   facts.dcf.first_placement):  # fmt: skip
        age = years_after_birth(events)
        assert age.min() >= 0 and age.max() < 18
    case_age = years_after_birth(facts.jbcssd.first_case)
    assert case_age.min() >= 10 and case_age.max() < 18
    assert years_after_birth(facts.doc.admission).min() >= 18
    assert years_after_birth(facts.dss.snap_start).min() >= 0
    release = facts.doc.release
    assert (release[~np.isnat(release)] >= facts.doc.admission[~np.isnat(release)]).all()
    first = facts.dcf.first_allegation
    contact = facts.dcf.first_contact
    both = ~np.isnat(contact)
    assert (first[both] <= contact[both]).all()
    ages = world.people.age
    assert ages.min() == 8 and ages.max() == 26


def test_error_flags_follow_the_configured_rates(world: SyntheticWorld) -> None:
    checks = {
        ErrorKind.FIRST_TYPO: "first_typo",
        ErrorKind.LAST_TYPO: "last_typo",
        ErrorKind.NAME_SWAP: "name_swap",
        ErrorKind.SURNAME_CHANGE: "surname_change",
        ErrorKind.SSN_MISSING: "ssn_missing",
        ErrorKind.SSN_TYPO: "ssn_typo",
        ErrorKind.OLD_ADDRESS: "old_address",
        ErrorKind.SEX_MISSING: "sex_missing",
        ErrorKind.DUPLICATE: "duplicate",
    }
    for code, table in world.tables.items():
        rates = AGENCY_ERRORS[code]
        n = len(table)
        for kind, field in checks.items():
            rate = getattr(rates, field)
            if kind is ErrorKind.SSN_TYPO:
                rate *= 1 - rates.ssn_missing - rates.ssn_placeholder
            if kind is ErrorKind.DUPLICATE:
                rate /= 1 + rate
            observed = ((table.errors & np.uint32(kind.value)) > 0).mean()
            tolerance = 4 * np.sqrt(rate * (1 - rate) / n) + 0.002
            assert observed == pytest.approx(rate, abs=tolerance), (code, field)


def test_records_actually_differ_from_the_truth(world: SyntheticWorld) -> None:
    people = world.people
    for code, table in world.tables.items():
        rates = AGENCY_ERRORS[code]
        rows = table.person_index
        truth = [letters(s) for s in people.last_name[rows]]
        shown = [letters(s) for s in table.identity.last_name]
        differs = np.mean([a != b for a, b in zip(truth, shown, strict=True)])
        low = rates.last_typo + rates.surname_change
        assert low * 0.7 <= differs <= low + rates.name_swap + 0.03, code
        ssn_shown = np.array([s != "" for s in table.identity.ssn])
        assert (~ssn_shown).mean() == pytest.approx(rates.ssn_missing, abs=0.03), code
        dob_differs = (table.identity.dob != people.dob_text[rows]).mean()
        dob_rate = rates.dob_typo + rates.dob_invalid + rates.dob_day_month * 0.35
        tolerance = 4 * np.sqrt(dob_rate * (1 - dob_rate) / len(table)) + 0.002
        assert dob_differs == pytest.approx(dob_rate, abs=tolerance), code


def test_every_error_kind_appears_somewhere(world: SyntheticWorld) -> None:
    seen = np.bitwise_or.reduce(np.concatenate([t.errors for t in world.tables.values()]))
    for kind in ErrorKind:
        # The classes after SEVERAL_ERRORS belong to the realistic model only.
        if kind is not ErrorKind.NONE and kind.value < ErrorKind.SEVERAL_ERRORS.value:
            assert int(seen) & kind.value, kind.name
    dobs = np.concatenate([t.identity.dob for t in world.tables.values()])
    invalid = 0
    for text in dobs.tolist():
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            invalid += 1
    assert 0 < invalid < 0.005 * len(dobs)
    ssns = Counter(np.concatenate([t.identity.ssn for t in world.tables.values()]).tolist())
    assert ssns["999-99-9999"] + ssns["999999999"] + ssns["123-45-6789"] > 0
    nicknames = {n.upper() for nicks in reference.nicknames().values() for n in nicks}
    dcf = world.tables["dcf"]
    used = [
        shown.upper() != true.upper() and shown.upper() in nicknames
        for shown, true in zip(
            dcf.identity.first_name, world.people.first_name[dcf.person_index], strict=True
        )
    ]
    assert np.mean(used) > 0.01


def test_duplicates_usually_get_a_new_agency_person_id(world: SyntheticWorld) -> None:
    table = world.tables["csde"]
    by_person: dict[int, set[str]] = {}
    for person, own_id in zip(table.person_index.tolist(), table.person_id, strict=True):
        by_person.setdefault(person, set()).add(own_id)
    counts = Counter(table.person_index.tolist())
    duplicated = [p for p, c in counts.items() if c > 1]
    new_id = np.mean([len(by_person[p]) > 1 for p in duplicated])
    assert len(duplicated) > 50
    assert new_id == pytest.approx(0.70, abs=0.12)


def test_identities_are_valid_and_twins_are_hard(world: SyntheticWorld) -> None:
    people = world.people
    ssn = people.ssn
    assert len(np.unique(ssn)) == len(ssn)
    area, group, serial = ssn // 1_000_000, ssn // 10_000 % 100, ssn % 10_000
    assert ((area > 0) & (area != 666) & (area < 900) & (group > 0) & (serial > 0)).all()
    twins = np.flatnonzero(people.twin_of >= 0)
    assert len(twins) / len(people) == pytest.approx(0.015, abs=0.002)
    other = people.twin_of[twins]
    assert (people.last_name[twins] == people.last_name[other]).all()
    assert (people.dob[twins] == people.dob[other]).all()
    assert (people.address[twins] == people.address[other]).all()
    assert (people.first_name[twins] != people.first_name[other]).all()
    hyphenated = np.mean(["-" in s for s in people.last_name])
    assert hyphenated == pytest.approx(0.03, abs=0.01)
    assert set(people.zip.tolist()) <= set(reference.towns().zip.tolist())
    assert len(reference.towns().name) == 169


def test_make_pair_has_the_requested_overlap() -> None:
    left, right, truth = make_pair(left=3000, right=2000, overlap=0.4, seed=3, right_ssn=False)
    assert len(left) == 3000 and len(right) == 2000
    assert len(truth) == 800
    left_by_id = {r.record_id: r for r in left}
    right_by_id = {r.record_id: r for r in right}
    assert len(left_by_id) == 3000 and len(right_by_id) == 2000
    assert all(r.ssn is None for r in right)
    assert sum(r.ssn is not None for r in left) > 2500
    assert len({a for a, _ in truth}) == len({b for _, b in truth}) == 800
    same_dob = np.mean([left_by_id[a].dob == right_by_id[b].dob for a, b in truth])
    assert 0.95 < same_dob < 1.0
    again = make_pair(left=3000, right=2000, overlap=0.4, seed=3, right_ssn=False)
    assert again[0] == left and again[2] == truth


def test_make_pair_clean_profile_has_no_errors() -> None:
    left, right, truth = make_pair(left=500, right=500, overlap=1.0, seed=4, error_profile="clean")
    assert len(truth) == 500
    left_by_id = {r.record_id: r for r in left}
    right_by_id = {r.record_id: r for r in right}
    for a, b in truth:
        x, y = left_by_id[a], right_by_id[b]
        assert letters(x.last_name or "") == letters(y.last_name or "")
        assert (x.dob, x.sex) == (y.dob, y.sex)
        assert (x.ssn or "").replace("-", "") == y.ssn
    with pytest.raises(ValueError, match="error_profile"):
        make_pair(left=1, right=1, overlap=0.5, seed=1, error_profile="nope")


def test_malformed_rows_only_on_request(world: SyntheticWorld, tmp_path: Path) -> None:
    paths = write_world(world, tmp_path, malformed_rows=3)
    header, rows = read_csv(paths["dss"])
    bad = [row for row in rows if len(row) != len(header) or not row[0]]
    assert len(bad) == 3
    truth_ids = {row[1] for row in read_csv(paths["truth"])[1]}
    assert not any(row[0] in truth_ids for row in bad)
    assert len(rows) == len(world.tables["dss"]) + 3
