"""The two agency extracts an evaluation reads, checked for the identifiers linkage needs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crosstally.extract import (
    ColumnMap,
    Extract,
    ExtractError,
    QualityProfile,
    RowProblem,
    quality_profile,
    read_extract,
)
from protocol.records import PersonRecord

# Without names and a date of birth or an SSN neither method can link anything: K-12
# records have no SSN, wage records no date of birth.
REQUIRED = ("first_name", "last_name")
ONE_OF = ("dob", "ssn")
_QUOTED = re.compile(r"'[^']*'")


@dataclass
class AgencyInput:
    """One side of an evaluation: the extract read, and its data-quality profile."""

    side: str
    extract: Extract
    profile: QualityProfile

    @property
    def records(self) -> list[PersonRecord]:
        return self.extract.records

    @property
    def source(self) -> str:
        return self.extract.source


def load_input(path: Path, column_map: ColumnMap | None, *, side: str) -> AgencyInput:
    """Read an extract; a missing required column is an error naming the file and column."""
    mapping = column_map or ColumnMap()
    extract = read_extract(path, mapping)
    missing = [c for c in REQUIRED if c not in extract.columns]
    if not any(c in extract.columns for c in ONE_OF):
        missing.append(" or ".join(ONE_OF))
    if missing:
        named = ", ".join(_named(c, mapping) for c in missing)
        raise ExtractError(
            f"{path}: required column(s) {named} not found. Linkage needs first_name, last_name "
            f"and at least one of dob or ssn; the file has "
            f"{', '.join(extract.columns) or 'no columns'}. Rename the columns or map them "
            'with --map MAP.toml, e.g. [columns] dob = "BIRTH_DATE"'
        )
    return AgencyInput(side, extract, quality_profile(extract))


def _named(column: str, mapping: ColumnMap) -> str:
    """A missing column as the message names it, with the source column it was mapped to."""
    if " or " in column:
        return " or ".join(_named(c, mapping) for c in column.split(" or "))
    source = mapping.source(column)
    return repr(column) if source == column else f"{column!r} (mapped to column {source!r})"


def redacted(problem: RowProblem) -> str:
    """A row problem for a report others read: an identifier's value is never quoted."""
    text = str(problem)
    return _QUOTED.sub("(value withheld)", text) if problem.field is not None else text
