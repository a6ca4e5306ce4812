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

This table is the `independent` error model. The `realistic` model (`realistic`) keeps the
conventions of each agency from it but draws data-entry errors per record from a latent level
of care, so errors co-occur. `ERROR_CLASSES` names every class either model records.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
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
    # Classes only the `realistic` model produces (appended: earlier bits keep their values).
    SEVERAL_ERRORS = enum.auto()
    FIRST_MISSING = enum.auto()
    FIRST_PLACEHOLDER = enum.auto()
    FIRST_OTHER = enum.auto()
    LAST_OCR = enum.auto()
    LAST_PHONETIC = enum.auto()
    DOB_OCR = enum.auto()
    DOB_YEAR = enum.auto()
    DOB_MISSING = enum.auto()
    DOB_HOUSEHOLD = enum.auto()
    DOB_FUTURE = enum.auto()
    SSN_TRANSPOSED = enum.auto()
    SSN_HOUSEHOLD = enum.auto()
    ADDRESS_NUMBER_TYPO = enum.auto()
    ADDRESS_STREET_TYPO = enum.auto()
    ADDRESS_SPLIT_MERGE = enum.auto()
    ADDRESS_UNIT = enum.auto()
    ADDRESS_ABBREVIATION = enum.auto()
    ZIP_TRANSPOSED = enum.auto()
    ZIP_PLACEHOLDER = enum.auto()
    DOB_SWAP = DOB_DAY_MONTH  # alias: day and month swapped


ERROR_MODELS = ("independent", "realistic")
ERROR_CLASSES: dict[str, str] = {
    "first_typo": "first name: one keyboard slip (letter inserted, dropped, replaced or swapped)",
    "last_typo": "last name: one keyboard slip",
    "nickname": "first name given as a nickname (William -> Bill)",
    "name_swap": "first and last name entered in each other's field",
    "dob_day_month": "DOB with day and month swapped (written raw even when no such date exists)",
    "dob_typo": "DOB with one digit mistyped (may leave an impossible date such as 2001-02-31)",
    "dob_invalid": "DOB impossible or not ISO: 31 April, MM/DD/YYYY (independent model only)",
    "hyphen_partial": "hyphenated surname kept in part (one part, or the parts without hyphen)",
    "surname_change": "a different surname (marriage, adoption, stepfamily)",
    "ssn_missing": "SSN missing (not collected or left blank)",
    "ssn_typo": "SSN with one digit wrong",
    "ssn_placeholder": "SSN replaced by a fill-in number (999-99-9999, 123-45-6789, 000-00-0000)",
    "middle_missing": "middle name missing although the person has one",
    "middle_initial": "middle name recorded as its initial only",
    "suffix_dropped": "name suffix (JR, III) dropped",
    "sex_missing": "sex missing",
    "sex_wrong": "sex recorded as the other one",
    "old_address": "an earlier address in another town (the person moved)",
    "duplicate": "a second record of the same person in the same extract",
    "zip_missing": "ZIP missing",
    "address_missing": "street address missing",
    "race_missing": "race and ethnicity missing",
    "several_errors": "two or more data-entry errors in the record (realistic model)",
    "first_missing": "first name missing",
    "first_placeholder": "first name is a placeholder (Baby Girl, Infant, Unknown, FNU)",
    "first_other": "a wholly different first name (often the person's middle name)",
    "last_ocr": "last name misread from a scanned form (l->1, O->0, rn->m, a '|' or digit)",
    "last_phonetic": "last name respelled as it sounds (ph/f, c/k, doubled letters, ...)",
    "dob_ocr": "DOB with a digit misread as a letter or sign (0->O, 1->l or |, 5->S)",
    "dob_year": "DOB year off by one or by ten",
    "dob_missing": "DOB missing",
    "dob_household": "DOB of another household member",
    "dob_future": "DOB after the extract date (year digits reversed, or a later year)",
    "ssn_transposed": "SSN with two adjacent digits swapped",
    "ssn_household": "SSN of another household member",
    "address_number_typo": "house number mistyped",
    "address_street_typo": "street name mistyped",
    "address_split_merge": "street name words split or merged (Oak Ridge -> Oakridge)",
    "address_unit": "apartment or unit number added or dropped",
    "address_abbreviation": "street suffix written the other way (St/Street) from the agency",
    "zip_transposed": "ZIP with two adjacent digits swapped",
    "zip_placeholder": "a placeholder ZIP that many records share (00000, 99999, 06101)",
}


@functools.cache
def error_classes(flags: int) -> tuple[str, ...]:
    """The sorted class names (keys of `ERROR_CLASSES`) of a record's `ErrorKind` bits."""
    return tuple(sorted(kind.name.lower() for kind in ErrorKind(int(flags)) if kind.name))


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
