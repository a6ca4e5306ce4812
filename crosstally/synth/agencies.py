"""The seven agency extracts: who appears in each, their own ids, and their attribute columns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from crosstally.synth import dates
from crosstally.synth.corrupt import ErrorArray, IdentityColumns, RecordStyle
from crosstally.synth.errors import DUPLICATE_KEEPS_PERSON_ID, ErrorKind, ErrorRates
from crosstally.synth.facts import PersonFacts
from crosstally.synth.population import People
from crosstally.synth.realistic_corrupt import corrupt_records
from crosstally.synth.reference import BoolArray, IntArray, ObjectArray
from protocol.records import CANONICAL_FIELDS, PersonRecord

CANONICAL_COLUMNS = CANONICAL_FIELDS


@dataclass(frozen=True)
class Agency:
    """An agency's extract format: file code, id formats, value style and extra columns."""

    code: str
    record_prefix: str
    person_prefix: str
    person_digits: int
    style: RecordStyle
    columns: tuple[str, ...]


AGENCIES: dict[str, Agency] = {
    a.code: a
    for a in (
        Agency("dcf", "DCF", "D", 8, RecordStyle(), (
            "substantiated", "allegation_count", "first_allegation_date",
            "first_substantiated_date", "placed", "first_placement_date", "first_contact")),
        Agency("jbcssd", "JB", "J", 8, RecordStyle(upper_case=True), (
            "juvenile_cases", "first_case_date", "first_offense_type", "first_contact")),
        Agency("csde", "SDE", "", 10, RecordStyle(), (
            "enrolled", "grade", "at_risk", "diploma", "district", "free_reduced_meal")),
        Agency("dss", "DSS", "", 9, RecordStyle(upper_case=True, ssn_dashes=False), (
            "snap", "snap_start_date", "medicaid")),
        Agency("dol", "DOL", "W", 9, RecordStyle(upper_case=True, ssn_dashes=False), (
            "employed", "quarters_employed", "wages_last_quarter")),
        Agency("doc", "DOC", "", 6, RecordStyle(upper_case=True, long_street_suffix=True), (
            "incarcerated", "admission_date", "release_date")),
        Agency("highered", "HE", "H", 8, RecordStyle(long_street_suffix=True), (
            "enrolled_postsecondary", "training", "institution")),
    )
}  # fmt: skip


@dataclass(frozen=True)
class AgencyExtract:
    """One agency's records, column-wise; row i is record `record_id(i)`."""

    agency: Agency
    person_index: IntArray  # the true person behind each record
    person_id: ObjectArray  # the agency's own person id
    identity: IdentityColumns
    attributes: dict[str, ObjectArray]
    errors: ErrorArray  # ErrorKind bits per record

    def __len__(self) -> int:
        return len(self.person_index)

    @property
    def columns(self) -> tuple[str, ...]:
        return CANONICAL_COLUMNS + self.agency.columns

    def record_id(self, row: int) -> str:
        return f"{self.agency.record_prefix}-{row + 1:0{self._id_width}d}"

    @property
    def _id_width(self) -> int:
        return max(7, len(str(len(self))))

    def record_ids(self) -> list[str]:
        return [self.record_id(i) for i in range(len(self))]

    def rows(self) -> Iterator[tuple[str, ...]]:
        """CSV rows in `columns` order; missing values are empty strings."""
        ident = self.identity
        return zip(
            self.record_ids(),
            self.person_id,
            *(getattr(ident, name) for name in CANONICAL_COLUMNS[2:]),
            *(self.attributes[name] for name in self.agency.columns),
            strict=True,
        )

    def records(self) -> list[PersonRecord]:
        """The extract as canonical person records (built on demand: ~1 KB each)."""
        extra = self.agency.columns
        width = len(CANONICAL_COLUMNS)
        return [
            person_record(row[:width], dict(zip(extra, row[width:], strict=True)))
            for row in self.rows()
        ]


def person_record(values: Sequence[str], attributes: dict[str, str] | None = None) -> PersonRecord:
    """A record from canonical column values in `CANONICAL_COLUMNS` order ('' means missing)."""
    v = [value or None for value in values]
    return PersonRecord(
        record_id=values[0],
        person_id=v[1],
        first_name=v[2],
        middle_name=v[3],
        last_name=v[4],
        suffix=v[5],
        dob=v[6],
        sex=v[7],
        ssn=v[8],
        zip=v[9],
        town=v[10],
        address=v[11],
        race=v[12],
        ethnicity=v[13],
        attributes=attributes if attributes is not None else {},
    )


def members(agency: str, facts: PersonFacts) -> BoolArray:
    """Which people appear in the agency's extract."""
    record: BoolArray = getattr(facts, agency).record
    return record


def build_extract(
    rng: np.random.Generator,
    agency: Agency,
    people: People,
    facts: PersonFacts,
    rates: ErrorRates,
    error_model: str = "independent",
) -> AgencyExtract:
    """Draw the agency's records: members, duplicates, shuffled, corrupted and formatted.

    `error_model` is `independent` (each error drawn on its own at `rates`) or `realistic`
    (`rates` give the agency's conventions and quality; see `realistic`).
    """
    base = np.flatnonzero(members(agency.code, facts)).astype(np.int64)
    duplicated = base[rng.random(len(base)) < rates.duplicate]
    rows = np.concatenate([base, duplicated])
    own_ids = unique_ids(rng, len(rows), agency.person_digits)
    keep = rng.random(len(duplicated)) < DUPLICATE_KEEPS_PERSON_ID
    own_ids[len(base) :][keep] = own_ids[: len(base)][np.isin(base, duplicated[keep])]
    is_duplicate = np.zeros(len(rows), dtype=bool)
    is_duplicate[len(base) :] = True
    order = rng.permutation(len(rows))
    rows, own_ids, is_duplicate = rows[order], own_ids[order], is_duplicate[order]

    identity = IdentityColumns.of(people, rows)
    errors = corrupt_records(error_model, rng, identity, people, rows, rates, agency.style)
    errors[is_duplicate] |= np.uint64(ErrorKind.DUPLICATE.value)
    person_id = np.empty(len(rows), dtype=object)
    person_id[:] = [f"{agency.person_prefix}{v}" for v in own_ids.tolist()]
    return AgencyExtract(
        agency=agency,
        person_index=rows,
        person_id=person_id,
        identity=identity,
        attributes=attribute_columns(agency.code, facts, rows),
        errors=errors,
    )


def unique_ids(rng: np.random.Generator, size: int, digits: int) -> IntArray:
    """`size` distinct random integers with exactly `digits` digits."""
    low, high = 10 ** (digits - 1), 10**digits
    if size > (high - low) // 2:
        raise ValueError(f"cannot draw {size} distinct {digits}-digit ids")
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < size:
        draw = rng.integers(low, high, size - len(chosen) + 16, dtype=np.int64)
        merged = np.concatenate([chosen, draw])
        _, first_seen = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first_seen)][:size]
    return chosen


def _flag(mask: BoolArray) -> ObjectArray:
    return np.where(mask, "Y", "N").astype(object)


def _count(values: IntArray) -> ObjectArray:
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values.tolist()]
    return out


def attribute_columns(agency: str, facts: PersonFacts, rows: IntArray) -> dict[str, ObjectArray]:
    """The agency's own columns for people `rows`, formatted as strings."""
    if agency == "dcf":
        w = facts.dcf
        return {
            "substantiated": _flag(w.substantiated[rows]),
            "allegation_count": _count(w.allegation_count[rows]),
            "first_allegation_date": dates.iso(w.first_allegation[rows]),
            "first_substantiated_date": dates.iso(w.first_substantiated[rows]),
            "placed": _flag(w.placed[rows]),
            "first_placement_date": dates.iso(w.first_placement[rows]),
            "first_contact": dates.iso(w.first_contact[rows]),
        }
    if agency == "jbcssd":
        j = facts.jbcssd
        first_case = dates.iso(j.first_case[rows])
        return {
            "juvenile_cases": _count(j.cases[rows]),
            "first_case_date": first_case,
            "first_offense_type": j.first_offense_type[rows],
            "first_contact": first_case.copy(),
        }
    if agency == "csde":
        s = facts.csde
        return {
            "enrolled": _flag(s.enrolled[rows]),
            "grade": s.grade[rows],
            "at_risk": _flag(s.at_risk[rows]),
            "diploma": _flag(s.diploma[rows]),
            "district": s.district[rows],
            "free_reduced_meal": _flag(s.free_reduced_meal[rows]),
        }
    if agency == "dss":
        d = facts.dss
        return {
            "snap": _flag(d.snap[rows]),
            "snap_start_date": dates.iso(d.snap_start[rows]),
            "medicaid": _flag(d.medicaid[rows]),
        }
    if agency == "dol":
        wages = facts.dol
        return {
            "employed": _flag(wages.employed[rows]),
            "quarters_employed": _count(wages.quarters_employed[rows]),
            "wages_last_quarter": _count(wages.wages_last_quarter[rows]),
        }
    if agency == "doc":
        c = facts.doc
        return {
            "incarcerated": _flag(c.incarcerated[rows]),
            "admission_date": dates.iso(c.admission[rows]),
            "release_date": dates.iso(c.release[rows]),
        }
    if agency == "highered":
        h = facts.highered
        return {
            "enrolled_postsecondary": _flag(h.enrolled[rows]),
            "training": _flag(h.training[rows]),
            "institution": h.institution[rows],
        }
    raise ValueError(f"unknown agency {agency!r}; expected one of {', '.join(AGENCIES)}")
