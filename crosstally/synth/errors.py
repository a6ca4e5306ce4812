"""Data-quality error rates per agency: how each extract departs from the true identities.

Each rate is the probability that one record gets that error, independently of the other
records of the same person (a person's duplicate record is corrupted afresh). `hyphen_partial`
applies only to people with a hyphenated surname, `dob_day_month` only to DOBs with day <= 12.

| error | dcf | jbcssd | csde | dss | dol | doc | highered | typical |
|---|---|---|---|---|---|---|---|---|
| first-name typo | 3% | 4% | 2% | 3% | 3.5% | 3% | 2.5% | 3% |
| last-name typo | 3% | 4% | 2% | 3% | 3.5% | 3% | 2.5% | 3% |
| nickname for first name (where one exists) | 5% | 5% | 1.5% | 3% | 4% | 5% | 4% | 4% |
| first/last swapped | 0.8% | 1% | 0.5% | 0.8% | 0.6% | 0.8% | 0.6% | 0.7% |
| DOB day/month swapped | 0.8% | 1% | 0.5% | 0.7% | 0.6% | 0.8% | 0.6% | 0.7% |
| DOB digit typo | 0.8% | 1% | 0.5% | 0.7% | 0.6% | 0.8% | 0.6% | 0.7% |
| DOB impossible or non-ISO | 0.2% | 0.2% | 0.1% | 0.15% | 0.1% | 0.2% | 0.15% | 0.15% |
| hyphenated surname: one part only | 35% | 40% | 25% | 30% | 40% | 40% | 30% | 33% |
| changed surname | 2% | 1.5% | 1% | 1.5% | 1% | 1.2% | 1% | 1.3% |
| SSN missing | 15% | 20% | 100% | 3% | 0.5% | 4% | 20% | 10% |
| SSN mistyped | 1.5% | 2% | 0 | 1.2% | 1.2% | 1.5% | 1.5% | 1.5% |
| SSN placeholder | 0.2% | 0.3% | 0 | 0.1% | 0.05% | 0.2% | 0.3% | 0.2% |
| middle name missing | 30% | 40% | 15% | 30% | 50% | 20% | 40% | 30% |
| middle name as initial | 20% | 30% | 10% | 30% | 40% | 30% | 20% | 25% |
| suffix dropped | 50% | 40% | 30% | 40% | 60% | 20% | 50% | 40% |
| sex missing | 1% | 0.5% | 0.3% | 1% | 10% | 0.2% | 2% | 1% |
| sex wrong | 0.3% | 0.3% | 0.2% | 0.3% | 0.3% | 0.2% | 0.3% | 0.3% |
| old address (other town) | 8% | 8% | 5% | 6% | 10% | 10% | 10% | 8% |
| duplicate record of the person | 3% | 2% | 1% | 2% | 1% | 1.5% | 1.5% | 0 |
| ZIP missing | 1% | 1% | 0.2% | 0.5% | 2% | 1% | 2% | 1% |
| address missing | 2% | 3% | 0.5% | 1% | 5% | 2% | 3% | 2% |
| race/ethnicity missing | 3% | 5% | 1% | 5% | 50% | 2% | 10% | 5% |

A duplicate keeps the agency's person id 30% of the time and gets a new one 70% of the time.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass


class ErrorKind(enum.IntFlag):
    """Which errors a record carries (a bit set, kept per record for evaluation)."""

    NONE = 0
    FIRST_TYPO = enum.auto()
    LAST_TYPO = enum.auto()
    NICKNAME = enum.auto()
    NAME_SWAP = enum.auto()
    DOB_DAY_MONTH = enum.auto()
    DOB_TYPO = enum.auto()
    DOB_INVALID = enum.auto()
    HYPHEN_PARTIAL = enum.auto()
    SURNAME_CHANGE = enum.auto()
    SSN_MISSING = enum.auto()
    SSN_TYPO = enum.auto()
    SSN_PLACEHOLDER = enum.auto()
    MIDDLE_MISSING = enum.auto()
    MIDDLE_INITIAL = enum.auto()
    SUFFIX_DROPPED = enum.auto()
    SEX_MISSING = enum.auto()
    SEX_WRONG = enum.auto()
    OLD_ADDRESS = enum.auto()
    DUPLICATE = enum.auto()
    ZIP_MISSING = enum.auto()
    ADDRESS_MISSING = enum.auto()
    RACE_MISSING = enum.auto()


@dataclass(frozen=True)
class ErrorRates:
    """Per-record error probabilities for one agency (see the module table)."""

    first_typo: float = 0.0
    last_typo: float = 0.0
    nickname: float = 0.0
    name_swap: float = 0.0
    dob_day_month: float = 0.0
    dob_typo: float = 0.0
    dob_invalid: float = 0.0
    hyphen_partial: float = 0.0
    surname_change: float = 0.0
    ssn_missing: float = 0.0
    ssn_typo: float = 0.0
    ssn_placeholder: float = 0.0
    middle_missing: float = 0.0
    middle_initial: float = 0.0
    suffix_dropped: float = 0.0
    sex_missing: float = 0.0
    sex_wrong: float = 0.0
    old_address: float = 0.0
    duplicate: float = 0.0
    zip_missing: float = 0.0
    address_missing: float = 0.0
    race_missing: float = 0.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"error rate {item.name}={value} must be within [0, 1]")

    def scaled(self, factor: float) -> ErrorRates:
        """All rates multiplied by `factor` (capped at 1), e.g. for a heavier error profile."""
        values = {
            f.name: min(1.0, getattr(self, f.name) * factor) for f in dataclasses.fields(self)
        }
        return ErrorRates(**values)

    def with_ssn(self, present: bool) -> ErrorRates:
        """These rates, or with every SSN missing when `present` is False."""
        return self if present else dataclasses.replace(self, ssn_missing=1.0)


_COLUMNS = ("dcf", "jbcssd", "csde", "dss", "dol", "doc", "highered", "typical")
_TABLE: dict[str, tuple[float, ...]] = {
    "first_typo": (0.03, 0.04, 0.02, 0.03, 0.035, 0.03, 0.025, 0.03),
    "last_typo": (0.03, 0.04, 0.02, 0.03, 0.035, 0.03, 0.025, 0.03),
    "nickname": (0.05, 0.05, 0.015, 0.03, 0.04, 0.05, 0.04, 0.04),
    "name_swap": (0.008, 0.01, 0.005, 0.008, 0.006, 0.008, 0.006, 0.007),
    "dob_day_month": (0.008, 0.01, 0.005, 0.007, 0.006, 0.008, 0.006, 0.007),
    "dob_typo": (0.008, 0.01, 0.005, 0.007, 0.006, 0.008, 0.006, 0.007),
    "dob_invalid": (0.002, 0.002, 0.001, 0.0015, 0.001, 0.002, 0.0015, 0.0015),
    "hyphen_partial": (0.35, 0.40, 0.25, 0.30, 0.40, 0.40, 0.30, 0.33),
    "surname_change": (0.02, 0.015, 0.01, 0.015, 0.01, 0.012, 0.01, 0.013),
    "ssn_missing": (0.15, 0.20, 1.0, 0.03, 0.005, 0.04, 0.20, 0.10),
    "ssn_typo": (0.015, 0.02, 0.0, 0.012, 0.012, 0.015, 0.015, 0.015),
    "ssn_placeholder": (0.002, 0.003, 0.0, 0.001, 0.0005, 0.002, 0.003, 0.002),
    "middle_missing": (0.30, 0.40, 0.15, 0.30, 0.50, 0.20, 0.40, 0.30),
    "middle_initial": (0.20, 0.30, 0.10, 0.30, 0.40, 0.30, 0.20, 0.25),
    "suffix_dropped": (0.50, 0.40, 0.30, 0.40, 0.60, 0.20, 0.50, 0.40),
    "sex_missing": (0.01, 0.005, 0.003, 0.01, 0.10, 0.002, 0.02, 0.01),
    "sex_wrong": (0.003, 0.003, 0.002, 0.003, 0.003, 0.002, 0.003, 0.003),
    "old_address": (0.08, 0.08, 0.05, 0.06, 0.10, 0.10, 0.10, 0.08),
    "duplicate": (0.03, 0.02, 0.01, 0.02, 0.01, 0.015, 0.015, 0.0),
    "zip_missing": (0.01, 0.01, 0.002, 0.005, 0.02, 0.01, 0.02, 0.01),
    "address_missing": (0.02, 0.03, 0.005, 0.01, 0.05, 0.02, 0.03, 0.02),
    "race_missing": (0.03, 0.05, 0.01, 0.05, 0.50, 0.02, 0.10, 0.05),
}


def _column(name: str) -> ErrorRates:
    index = _COLUMNS.index(name)
    return ErrorRates(**{field: row[index] for field, row in _TABLE.items()})


AGENCY_ERRORS: dict[str, ErrorRates] = {name: _column(name) for name in _COLUMNS[:-1]}
TYPICAL_ERRORS = _column("typical")
ERROR_PROFILES: dict[str, ErrorRates] = {
    "clean": ErrorRates(),
    "typical": TYPICAL_ERRORS,
    "heavy": TYPICAL_ERRORS.scaled(2.5),
}
DUPLICATE_KEEPS_PERSON_ID = 0.30
