"""The realistic error model: rates, the dirtiness mixture, labels, households, interfaces."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crosstally.cli import app
from crosstally.synth import (
    ERROR_CLASSES,
    TYPICAL_ERRORS,
    ErrorKind,
    error_classes,
    generate,
    make_pair,
    make_parties,
    realistic,
    reference,
    write_world,
)
from crosstally.synth.corrupt import ErrorArray, IdentityColumns
from crosstally.synth.population import People, draw_people
from crosstally.synth.realistic import CARE_KINDS, FIELDS, CareMix, expected_rates, field_rates
from crosstally.synth.realistic_corrupt import (
    PLACEHOLDER_FIRST_NAMES,
    PLACEHOLDER_ZIPS,
    corrupt_realistic,
)
from crosstally.synth.reference import BoolArray, IntArray, ObjectArray
from crosstally.synth.world import AS_OF
from protocol.linkage.normalize import normalize_person, parse_dob
from protocol.records import PersonRecord

N = 20_000
K = ErrorKind
# Rates with every SSN present, so SSN_MISSING comes from care alone.
RATES = dataclasses.replace(TYPICAL_ERRORS, ssn_missing=0.0)


@dataclasses.dataclass(frozen=True)
class Corrupted:
    people: People
    rows: IntArray
    truth: IdentityColumns
    shown: IdentityColumns
    errors: ErrorArray

    def has(self, kind: ErrorKind) -> BoolArray:
        flagged: BoolArray = (self.errors & np.uint64(kind.value)) > 0
        return flagged


@pytest.fixture(scope="module")
def corrupted() -> Corrupted:
    rng = np.random.default_rng(11)
    people = draw_people(rng, N, as_of=AS_OF)
    rows = np.arange(N, dtype=np.int64)
    shown = IdentityColumns.of(people, rows)
    errors = corrupt_realistic(rng, shown, people, rows, RATES)
    return Corrupted(people, rows, IdentityColumns.of(people, rows), shown, errors)


def digest(records: list[PersonRecord]) -> str:
    h = hashlib.sha256()
    for r in records:
        values = dataclasses.astuple(r)[:-1]
        h.update("|".join("" if v is None else str(v) for v in values).encode() + b"\n")
    return h.hexdigest()


def test_the_independent_model_is_unchanged() -> None:
    # Digests of make_pair's output computed before the realistic model existed.
    left, right, truth = make_pair(left=200, right=200, overlap=0.5, seed=1)
    assert digest(left) == "9a664976c7f3c17ca1d5aa59d19d0e08c3a06635f446e5d63c7ecf8d23ce5e90"
    assert digest(right) == "76304acb5b4ad85499312c8ebc405d4d2506ce6497ed692c718c75dc8fb99b8d"
    assert len(truth) == 100 and ("L0000001", "R0000111") in truth
    assert (right[3].first_name, right[3].last_name, right[3].address) == (
        "KEVYN", "PEMHAM", "9 NOBLE ST APT 28",
    )  # fmt: skip
    labelled: dict[str, tuple[str, ...]] = {}
    again = make_pair(left=200, right=200, overlap=0.5, seed=1, errors_out=labelled)
    assert again[0] == left and again[1] == right
    assert set(labelled) == {r.record_id for r in left + right}


def test_same_seed_same_records_and_labels() -> None:
    first: dict[str, tuple[str, ...]] = {}
    second: dict[str, tuple[str, ...]] = {}
    a = make_pair(left=800, right=600, overlap=0.5, seed=5, error_model="realistic",
                  errors_out=first)  # fmt: skip
    b = make_pair(left=800, right=600, overlap=0.5, seed=5, error_model="realistic",
                  errors_out=second)  # fmt: skip
    c = make_pair(left=800, right=600, overlap=0.5, seed=6, error_model="realistic")
    assert a == b and first == second
    assert a[0] != c[0]
    assert a[0] != make_pair(left=800, right=600, overlap=0.5, seed=5)[0]
    assert all(labels == tuple(sorted(labels)) for labels in first.values())
    assert set().union(*first.values()) <= set(ERROR_CLASSES)
    several = np.mean(["several_errors" in labels for labels in first.values()])
    assert 0.03 < several < 0.12
    with pytest.raises(ValueError, match="error_model"):
        make_pair(left=1, right=1, overlap=0.5, seed=1, error_model="sloppy")


def test_make_pair_labels_explain_how_linked_records_differ() -> None:
    labels: dict[str, tuple[str, ...]] = {}
    left, right, truth = make_pair(left=4000, right=4000, overlap=1.0, seed=9,
                                   error_model="realistic", errors_out=labels)  # fmt: skip
    by_id = {r.record_id: r for r in left + right}
    dob_classes = {name for name in ERROR_CLASSES if name.startswith("dob_")}
    swapped = 0
    for a, b in truth:
        dob_errors = dob_classes & {*labels[a], *labels[b]}
        same = by_id[a].dob == by_id[b].dob
        assert same == (not dob_errors), (a, b, dob_errors)
        if "dob_day_month" in labels[a] and not dob_classes & set(labels[b]):
            x, y = by_id[a].dob or "", by_id[b].dob or ""
            assert x == f"{y[:4]}-{y[8:10]}-{y[5:7]}"
            swapped += 1
    assert swapped > 10
    clean: dict[str, tuple[str, ...]] = {}
    make_pair(left=300, right=300, overlap=1.0, seed=9, error_model="realistic",
              error_profile="clean", errors_out=clean)  # fmt: skip
    assert set(clean.values()) == {()}


def test_make_parties_takes_the_model_and_labels() -> None:
    labels: dict[str, tuple[str, ...]] = {}
    lists, truth = make_parties(records=300, parties=3, overlap=0.4, seed=2,
                                error_model="realistic", errors_out=labels)  # fmt: skip
    assert len(truth) == 120
    assert set(labels) == {r.record_id for records in lists for r in records}
    assert any("dob_household" in v or "several_errors" in v for v in labels.values())


def test_error_class_vocabulary() -> None:
    names = {kind.name.lower() for kind in ErrorKind if kind.name and kind is not K.NONE}
    assert names == set(ERROR_CLASSES)
    assert error_classes(0) == ()
    assert error_classes(int(K.DOB_SWAP | K.SSN_HOUSEHOLD)) == ("dob_day_month", "ssn_household")
    assert K.DOB_SWAP is K.DOB_DAY_MONTH and K.FIRST_TYPO.value == 1  # old bits unchanged


def test_the_dirtiness_mixture_matches_the_care_levels(corrupted: Corrupted) -> None:
    care = np.zeros(N, dtype=np.int64)
    for kind in CARE_KINDS:
        care += corrupted.has(kind)
    expected = CareMix.of(1.0).counts
    assert expected[:3] == pytest.approx((0.78, 0.15, 0.035))
    observed = [np.mean(care == 0), np.mean(care == 1), np.mean(care == 2), np.mean(care >= 3)]
    target = [expected[0], expected[1], expected[2], sum(expected[3:])]
    for got, want in zip(observed, target, strict=True):
        assert got == pytest.approx(want, abs=4 * np.sqrt(want * (1 - want) / N))
    assert care.max() == 4
    assert (corrupted.has(K.SEVERAL_ERRORS) == (care >= 2)).all()


def _applies(kind: ErrorKind, c: Corrupted) -> BoolArray:
    """Which records the class could apply to (else the field's first class is used)."""
    truth = c.truth
    if kind is K.NICKNAME:
        nicknames = reference.nicknames()
        return np.array([s.upper() in nicknames for s in truth.first_name])
    if kind is K.DOB_DAY_MONTH:
        return np.array([s[5:7] != s[8:10] for s in truth.dob])
    return np.ones(N, dtype=bool)


def test_every_class_appears_at_its_documented_rate(corrupted: Corrupted) -> None:
    expected = expected_rates()
    by_field = field_rates(CareMix.of(1.0))
    for name, _, classes in FIELDS:
        fallback = 0.0
        for kind, share in classes[1:]:
            eligible = _applies(kind, corrupted)
            fallback += share * (1 - eligible.mean())
            rate = expected[kind]
            observed = corrupted.has(kind)[eligible].mean()
            sd = np.sqrt(rate * (1 - rate) / eligible.sum())
            assert observed == pytest.approx(rate, abs=4 * sd + 0.1 * rate), kind.name
        first, share = classes[0]
        rate = by_field[name] * (share + fallback)
        sd = np.sqrt(rate * (1 - rate) / N)
        assert corrupted.has(first).mean() == pytest.approx(rate, abs=4 * sd + 0.1 * rate), name
    # The documented table: a few spot values (typical agency, SSN present).
    assert expected[K.OLD_ADDRESS] == pytest.approx(0.036, abs=0.0005)
    assert expected[K.FIRST_TYPO] == pytest.approx(0.020, abs=0.0005)
    assert expected[K.SSN_TRANSPOSED] == pytest.approx(0.0042, abs=0.0002)
    assert sum(CareMix.of(1.0).counts[2:]) == pytest.approx(0.07)


def test_the_documented_table_is_the_model() -> None:
    doc = realistic.__doc__ or ""
    table = doc[doc.index("| field / class |") :].split("\n\n")[0].splitlines()[2:]
    pct = [
        (name.strip(), float(share.strip(" %")), float(rate.strip(" %")))
        for name, share, rate in (line.split("|")[1:4] for line in table)
    ]
    expected, by_field = expected_rates(), field_rates(CareMix.of(1.0))
    model = []
    for name, share, classes in FIELDS:
        model.append((share, by_field[name]))
        model += [(class_share, expected[kind]) for kind, class_share in classes]
    assert len(pct) == len(model)
    for (label, share, rate), (model_share, model_rate) in zip(pct, model, strict=True):
        assert share == pytest.approx(100 * model_share), label
        assert rate == pytest.approx(100 * model_rate, abs=0.06), label


def _differs(a: ObjectArray, b: ObjectArray) -> BoolArray:
    return np.array([x.upper() != y.upper() for x, y in zip(a, b, strict=True)])


def test_labels_agree_with_what_changed(corrupted: Corrupted) -> None:
    c, t, s = corrupted, corrupted.truth, corrupted.shown
    swapped = c.has(K.NAME_SWAP)
    first = [K.FIRST_TYPO, K.NICKNAME, K.FIRST_OTHER, K.FIRST_MISSING, K.FIRST_PLACEHOLDER]
    last = [K.LAST_TYPO, K.LAST_OCR, K.LAST_PHONETIC, K.SURNAME_CHANGE, K.HYPHEN_PARTIAL]
    dob = [K.DOB_TYPO, K.DOB_DAY_MONTH, K.DOB_YEAR, K.DOB_MISSING, K.DOB_HOUSEHOLD,
           K.DOB_FUTURE, K.DOB_OCR]  # fmt: skip
    ssn = [K.SSN_TYPO, K.SSN_MISSING, K.SSN_TRANSPOSED, K.SSN_HOUSEHOLD, K.SSN_PLACEHOLDER]
    address = [K.OLD_ADDRESS, K.ADDRESS_NUMBER_TYPO, K.ADDRESS_STREET_TYPO,
               K.ADDRESS_SPLIT_MERGE, K.ADDRESS_UNIT, K.ADDRESS_MISSING]  # fmt: skip
    zips = [K.ZIP_TRANSPOSED, K.ZIP_MISSING, K.ZIP_PLACEHOLDER]
    moved = c.has(K.OLD_ADDRESS)
    for kinds, shown, true, skip in (
        (first, s.first_name, t.first_name, swapped),
        (last, s.last_name, t.last_name, swapped),
        (dob, s.dob, t.dob, None),
        (ssn, s.ssn, t.ssn, None),
        (address, s.address, t.address, None),
        (zips, s.zip, t.zip, moved),
        ([K.SEX_MISSING, K.SEX_WRONG], s.sex, t.sex, None),
    ):
        flagged = np.zeros(N, dtype=bool)
        for kind in kinds:
            flagged |= c.has(kind)
        keep = ~skip if skip is not None else np.ones(N, dtype=bool)
        changed = _differs(shown, true)
        assert (changed[keep] == flagged[keep]).all(), kinds[0].name
    assert (s.first_name[swapped] != t.first_name[swapped]).all()
    assert (s.town[moved] != t.town[moved]).all()

    def where(kind: ErrorKind) -> list[int]:
        return np.flatnonzero(c.has(kind)).tolist()

    for i in where(K.DOB_DAY_MONTH):
        assert s.dob[i] == f"{t.dob[i][:4]}-{t.dob[i][8:10]}-{t.dob[i][5:7]}"
    for i in where(K.DOB_FUTURE):
        assert int(s.dob[i][:4]) > AS_OF.year
    assert set(s.dob[c.has(K.DOB_MISSING)]) == set(s.ssn[c.has(K.SSN_MISSING)]) == {""}
    assert set(s.first_name[c.has(K.FIRST_MISSING) & ~swapped]) == {""}
    for i in where(K.SSN_TRANSPOSED):
        assert sorted(s.ssn[i]) == sorted(t.ssn[i])
        assert sum(a != b for a, b in zip(s.ssn[i], t.ssn[i], strict=True)) == 2
    for i in where(K.SSN_TYPO) + where(K.DOB_TYPO):
        shown, true = (s.ssn[i], t.ssn[i]) if c.has(K.SSN_TYPO)[i] else (s.dob[i], t.dob[i])
        assert sum(a != b for a, b in zip(shown, true, strict=True)) == 1
    assert set(s.zip[c.has(K.ZIP_PLACEHOLDER)]) <= set(PLACEHOLDER_ZIPS)
    placeholder = {n for base in PLACEHOLDER_FIRST_NAMES for n in (base, "Baby Girl", "Baby Boy")}
    assert set(s.first_name[c.has(K.FIRST_PLACEHOLDER) & ~swapped]) <= placeholder
    for i in where(K.DOB_YEAR):
        assert abs(int(s.dob[i][:4]) - int(t.dob[i][:4])) in (1, 10)
        assert s.dob[i][4:] == t.dob[i][4:]


def test_swapped_and_misread_dobs_stay_raw(corrupted: Corrupted) -> None:
    c, s = corrupted, corrupted.shown
    swapped = s.dob[c.has(K.DOB_DAY_MONTH)]
    impossible = [d for d in swapped if int(d[5:7]) > 12]
    assert len(impossible) > 20  # day > 12: written as YYYY-DD-MM all the same
    misread = s.dob[c.has(K.DOB_OCR)]
    assert all(any(ch in d for ch in "ODlI|ZSbBg") for d in misread)
    for raw in impossible[:20] + misread[:20].tolist():
        record = PersonRecord(record_id="x", first_name="A", last_name="B", dob=raw)
        assert record.dob == raw
        assert parse_dob(raw, today=AS_OF).value is None
        normalized = normalize_person(record, today=AS_OF)
        assert normalized.dob is None and any("dob" in issue for issue in normalized.issues)


def test_household_copies_come_from_household_members(corrupted: Corrupted) -> None:
    c, people = corrupted, corrupted.people
    member = people.household_member
    has = member >= 0
    assert (people.last_name[member[has]] == people.last_name[has]).all()
    assert (people.town_index[member[has]] == people.town_index[has]).all()
    dob_rows = np.flatnonzero(c.has(K.DOB_HOUSEHOLD))
    ssn_rows = np.flatnonzero(c.has(K.SSN_HOUSEHOLD))
    assert len(dob_rows) > 30 and len(ssn_rows) > 30
    copied = 0
    for i in dob_rows.tolist():
        m = member[i]
        if m >= 0 and people.dob[m] != people.dob[i]:
            assert c.shown.dob[i] == people.dob_text[m]
            copied += 1
    for i in ssn_rows.tolist():
        if member[i] >= 0:
            assert c.shown.ssn[i] == people.ssn_text[member[i]]
            copied += 1
    assert copied > 10


def test_realistic_records_normalize() -> None:
    left, right, _ = make_pair(left=1500, right=1500, overlap=0.5, seed=8,
                               error_model="realistic")  # fmt: skip
    issues: Counter[str] = Counter()
    for record in left + right:
        normalized = normalize_person(record, today=AS_OF)
        issues.update(issue.split(":")[0] for issue in normalized.issues)
    assert issues["dob"] > 0


def test_agencies_differ_in_quality_and_truth_lists_errors(tmp_path: Path) -> None:
    world = generate(people=6000, seed=3, error_model="realistic")
    assert world.error_model == "realistic"
    dirty = {
        code: ((table.errors & np.uint64(K.SEVERAL_ERRORS.value)) > 0).mean()
        for code, table in world.tables.items()
    }
    assert dirty["jbcssd"] > dirty["csde"]
    seen = int(np.bitwise_or.reduce(np.concatenate([t.errors for t in world.tables.values()])))
    for kind in ErrorKind:
        if kind not in (K.NONE, K.DOB_INVALID):  # no MM/DD/YYYY dates: the agencies use ISO
            assert seen & kind.value, kind.name
    csde = world.tables["csde"]
    assert set(csde.identity.ssn.tolist()) == {""}
    paths = write_world(world, tmp_path)
    with paths["truth"].open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["agency", "record_id", "person_id", "errors"]
    table = world.tables["dcf"]
    labels = {row[1]: row[3] for row in rows if row[0] == "dcf"}
    for record_id, flags in zip(table.record_ids(), table.errors.tolist(), strict=True):
        assert labels[record_id] == ";".join(error_classes(flags))
    assert any(value == "" for value in labels.values())
    again = write_world(generate(people=6000, seed=3, error_model="realistic"), tmp_path / "b")
    assert again["dcf"].read_bytes() == paths["dcf"].read_bytes()
    with pytest.raises(ValueError, match="error_model"):
        generate(people=10, seed=1, error_model="nope")


def test_synth_command_takes_the_error_model(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["synth", "--out", str(tmp_path), "--people", "800",
                                 "--errors", "realistic"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with (tmp_path / "truth.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert any("several_errors" in row["errors"] for row in rows)
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path), "--errors", "sloppy"])
    assert bad.exit_code != 0
