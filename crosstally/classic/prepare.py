"""What the classic hub receives: every record's identifiers, normalized, grouped into persons."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jellyfish
import pyarrow as pa

from protocol.cohort import group_persons
from protocol.linkage.keys import load_profile
from protocol.linkage.normalize import normalize_person
from protocol.records import NormalizedPerson, PersonRecord


@dataclass
class SourceRecords:
    """One source's records at the hub, normalized, and its own records of one person grouped.

    A source groups its own records exactly as an agency node does before the private
    protocol (`protocol.cohort.group_persons`), so both methods link the same persons
    and differ only in how they link across sources.
    """

    name: str
    records: list[PersonRecord]
    normalized: list[NormalizedPerson]
    person_of: list[int]
    persons: list[list[int]]

    def __len__(self) -> int:
        return len(self.records)


def prepare_source(
    name: str, records: Sequence[PersonRecord], *, today: dt.date | None = None
) -> SourceRecords:
    """Normalize a source's records with the shared normalizer and group them into persons."""
    normalized = [normalize_person(r, today=today) for r in records]
    persons = group_persons(records, normalized, load_profile("standard"))
    person_of = [0] * len(records)
    for p, members in enumerate(persons):
        for i in members:
            person_of[i] = p
    return SourceRecords(name, list(records), normalized, person_of, persons)


HUB_SCHEMA = pa.schema(
    [
        ("unique_id", pa.int64()),
        ("source_dataset", pa.string()),
        ("first_name", pa.string()),
        ("first_initial", pa.string()),
        ("middle_name", pa.string()),
        ("middle_initial", pa.string()),
        ("last_name", pa.string()),
        ("first_forms", pa.list_(pa.string())),
        ("last_parts", pa.list_(pa.string())),
        ("soundex_first", pa.string()),
        ("soundex_last", pa.string()),
        ("metaphone_first", pa.string()),
        ("metaphone_last", pa.string()),
        ("dob", pa.string()),
        ("dob_digits", pa.string()),
        ("birth_year", pa.int32()),
        ("birth_month", pa.int32()),
        ("birth_day", pa.int32()),
        ("ssn", pa.string()),
        ("sex", pa.string()),
        ("zip", pa.string()),
        ("town", pa.string()),
        ("street", pa.string()),
        ("street_number", pa.string()),
        ("street_name", pa.string()),
    ]
)
# A normalized street is "12MAINST": the house number, then the compact street name.
_HOUSE = re.compile(r"(\d+)([A-Z].*)")


def _phonetic(code: Callable[[str], str], name: str | None) -> str | None:
    return (code(name) or None) if name else None


def _street_parts(street: str | None) -> tuple[str | None, str | None]:
    match = _HOUSE.fullmatch(street or "")
    return (match[1], match[2]) if match else (None, street)


def hub_table(source: SourceRecords) -> pa.Table:
    """The source's identifiers as one row per record, in the layout the linkage model reads."""
    people = source.normalized
    dobs = [p.dob for p in people]
    streets = [_street_parts(p.street) for p in people]
    columns: dict[str, list[object]] = {
        "unique_id": list(range(len(people))),
        "source_dataset": [source.name] * len(people),
        "first_name": [p.first for p in people],
        "first_initial": [p.first[0] if p.first else None for p in people],
        "middle_name": [p.middle for p in people],
        "middle_initial": [p.middle[0] if p.middle else None for p in people],
        "last_name": [p.last for p in people],
        "first_forms": [list(p.first_forms) or None for p in people],
        "last_parts": [list(p.last_parts) or None for p in people],
        "soundex_first": [_phonetic(jellyfish.soundex, p.first) for p in people],
        "soundex_last": [_phonetic(jellyfish.soundex, p.last) for p in people],
        "metaphone_first": [_phonetic(jellyfish.metaphone, p.first) for p in people],
        "metaphone_last": [_phonetic(jellyfish.metaphone, p.last) for p in people],
        "dob": [d.isoformat() if d else None for d in dobs],
        "dob_digits": [d.strftime("%Y%m%d") if d else None for d in dobs],
        "birth_year": [d.year if d else None for d in dobs],
        "birth_month": [d.month if d else None for d in dobs],
        "birth_day": [d.day if d else None for d in dobs],
        "ssn": [p.ssn for p in people],
        "sex": [p.sex for p in people],
        "zip": [p.zip for p in people],
        "town": [p.town for p in people],
        "street": [p.street for p in people],
        "street_number": [number for number, _ in streets],
        "street_name": [name for _, name in streets],
    }
    return pa.table(columns, schema=HUB_SCHEMA)
