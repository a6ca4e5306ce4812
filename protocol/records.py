"""Canonical person records as an agency node reads them, and their normalized form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# The canonical person record's columns, in the order extracts and CSVs use.
CANONICAL_FIELDS = (
    "record_id",
    "person_id",
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "dob",
    "sex",
    "ssn",
    "zip",
    "town",
    "address",
    "race",
    "ethnicity",
)
# Everything that identifies a person: the canonical fields but the ids and demographics.
IDENTIFIER_FIELDS = tuple(
    f for f in CANONICAL_FIELDS if f not in ("record_id", "person_id", "race", "ethnicity")
)


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One row of an agency extract after column mapping; values are raw strings."""

    record_id: str
    person_id: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    suffix: str | None = None
    dob: str | None = None
    sex: str | None = None
    ssn: str | None = None
    zip: str | None = None
    town: str | None = None
    address: str | None = None
    race: str | None = None
    ethnicity: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        """A canonical field or an extra attribute by name (None when absent or blank)."""
        raw = getattr(self, name) if name in _CANONICAL else self.attributes.get(name)
        if raw is None:
            return None
        text = str(raw).strip()
        return text or None


_CANONICAL = frozenset(CANONICAL_FIELDS)


@dataclass(frozen=True, slots=True)
class NormalizedPerson:
    """Identifiers cleaned for linkage. None means missing or invalid; `issues` says which."""

    first: str | None
    middle: str | None
    last: str | None
    last_parts: tuple[str, ...]
    first_forms: tuple[str, ...]
    dob: dt.date | None
    sex: str | None
    ssn: str | None
    zip: str | None
    town: str | None
    street: str | None
    issues: tuple[str, ...] = ()
    # Dates a DOB rejected as unreadable or impossible most likely meant (linkage only).
    dob_repairs: tuple[dt.date, ...] = ()
