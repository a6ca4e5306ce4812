"""The `realistic` error model: records vary in care, so data-entry errors come together.

Each record gets a latent level of care. A careful record has no data-entry error; an ordinary
one has exactly one; a careless one has two to four, in distinct fields. Which fields are wrong
is drawn by field weight (without replacement, so a careless record's errors fall on different
fields), and within a field which kind of error by class weight. Agencies' conventions (middle
names kept as initials, suffixes dropped, SSN not collected, ...) are not errors of care: they
apply independently at the agency's rates from the `independent` table in `errors`, plus a
street suffix written the other way in `ABBREVIATION_RATE` (8%) of records, times `q` below.

Care levels (typical agency; an agency's or profile's quality factor `q` multiplies the
ordinary and careless shares, `q` = its first-name typo rate over the typical one):

| level | share | data-entry errors |
|---|---|---|
| careful | 78% | 0 |
| ordinary | 15% | 1 |
| careless | 7% | 2 (50%), 3 (30%) or 4 (20%) |

So 78% of records have no error, 15% one, 3.5% two, 2.1% three and 1.4% four (7% have
several, class `several_errors`), 0.34 errors per record. Household correlation: a DOB or SSN
copied from a household member (another person with the same surname in the same town, the
population having no explicit households; failing one, a made-up parent's or sibling's).

Fields and classes. "Share" is the field's share of errors or the class's share of its field's
errors; "rate" the resulting share of records (typical agency, SSN present; `expected_rates`
computes it). A class that does not apply to a record (no nickname for the name, day equal to
month) falls back to its field's first class.

| field / class | share | rate | source or reason |
|---|---|---|---|
| address | 30% | 9.0% | moves dominate disagreement; 8-10%/yr move, young adults ~2x (CPS ASEC) |
| - old address (moved) | 40% | 3.6% | Census CPS ASEC geographic mobility tables |
| - house number typo | 12% | 1.1% | keyboard digits: single errors 60-95% (Verhoeff 1969) |
| - street name typo | 14% | 1.3% | one edit per misspelling in >80% (Damerau 1964) |
| - words split or merged | 8% | 0.7% | a space typed or dropped; compound names vary |
| - unit added or dropped | 14% | 1.3% | units are often left off forms (first principles) |
| - address missing | 12% | 1.1% | missing values (GeCo taxonomy); optional field |
| first name | 17% | 5.7% | |
| - keyboard typo | 35% | 2.0% | Damerau 1964 |
| - nickname | 30% | 1.7% | name variants are the commonest first-name disagreement |
| - other given name | 15% | 0.9% | known by the middle name, or a different name on file |
| - missing | 12% | 0.7% | missing values (GeCo taxonomy) |
| - placeholder | 8% | 0.5% | newborns' "Baby Girl" (Joint Commission NPSG.01.01.01); "FNU" |
| last name | 15% | 5.1% | |
| - keyboard typo | 35% | 1.8% | Damerau 1964 |
| - phonetic respelling | 20% | 1.0% | spoken intake; Christen 2006 name-matching study |
| - OCR misread | 10% | 0.5% | l/1/I, O/0, rn/m (ISRI OCR accuracy tests, Rice et al. 1996) |
| - changed surname | 20% | 1.0% | 79% of wives take the husband's name (Pew 2023); adoption |
| - first/last swapped | 15% | 0.8% | forms that ask for last name first |
| DOB | 12% | 4.2% | |
| - digit typo | 25% | 1.05% | Verhoeff 1969 single-digit errors |
| - day/month swapped | 20% | 0.8% | US MM/DD against DD/MM elsewhere; invalid months kept raw |
| - year off by one or ten | 15% | 0.6% | year digit slips, age-at-intake arithmetic |
| - missing | 15% | 0.6% | missing values (GeCo taxonomy) |
| - household member's DOB | 12% | 0.5% | parent's or sibling's date on the child's record |
| - future date | 8% | 0.3% | year digits reversed (2013 -> 2031) or a later year |
| - OCR misread | 5% | 0.2% | 0/O, 1/l/|, 5/S confusions (Rice et al. 1996) |
| SSN | 12% | 4.2% | a few % of W-2s fail SSA's name/SSN match (SSA OIG, Earnings Suspense File) |
| - one digit wrong | 42% | 1.8% | Verhoeff 1969: single errors 60-95% |
| - missing | 30% | 1.3% | left blank at intake |
| - adjacent digits swapped | 10% | 0.4% | Verhoeff 1969: adjacent transpositions 10-20% |
| - household member's SSN | 10% | 0.4% | a parent's SSN on a child's record |
| - placeholder | 8% | 0.3% | fill-ins 999-99-9999, 123-45-6789, 000-00-0000 |
| ZIP | 8% | 2.9% | |
| - adjacent digits swapped | 40% | 1.15% | Verhoeff 1969 |
| - missing | 35% | 1.0% | missing values (GeCo taxonomy) |
| - placeholder shared by many | 25% | 0.7% | default values 00000, 99999, the office's 06101 |
| sex | 8% | 2.9% | |
| - missing | 60% | 1.7% | optional field |
| - wrong | 40% | 1.15% | coding slip F/M |

A field is hit a little less often than 0.34 x its share when the share is large (address) and
a little more when it is small, because a careless record's errors go to distinct fields. A
mistyped digit becomes a neighbouring key (70%) or any other digit; "FNU" is "first name
unknown" as federal files write it.

Sources: Damerau, "A technique for computer detection and correction of spelling errors",
CACM 1964; Verhoeff, "Error detecting decimal codes", Mathematical Centre Tracts 29, 1969
(single-digit errors 60-95%, adjacent transpositions 10-20% of human errors with numbers);
Christen & Pudjijono, PAKDD 2009, and Tran, Vatsalan & Christen, "GeCo", CIKM 2013 (the
corruption taxonomy: keyboard, OCR, phonetic, missing values); Christen, "A comparison of
personal name matching", ICDM workshops 2006; Rice, Jenkins & Nartker, "The fifth annual
test of OCR accuracy", ISRI TR-96-01, 1996; US Census Bureau CPS ASEC geographic mobility
tables; Pew Research Center, 2023 (79% of women in opposite-sex marriages took their
husband's last name); SSA Office of the Inspector General audits of the Earnings Suspense
File; The Joint Commission, NPSG.01.01.01 (distinct newborn identification, 2019). Shares
within fields are judgement calls from these and first principles, not fitted to any corpus.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from crosstally.synth.errors import TYPICAL_ERRORS, ErrorKind, ErrorRates

# (name, share of records, distribution of the number of data-entry errors: {count: share})
CARE_LEVELS: tuple[tuple[str, float, dict[int, float]], ...] = (
    ("careful", 0.78, {0: 1.0}),
    ("ordinary", 0.15, {1: 1.0}),
    ("careless", 0.07, {2: 0.5, 3: 0.3, 4: 0.2}),
)
ABBREVIATION_RATE = 0.08
# Field name, its share of data-entry errors, and its classes with their share of the field.
FIELDS: tuple[tuple[str, float, tuple[tuple[ErrorKind, float], ...]], ...] = (
    ("address", 0.30, (
        (ErrorKind.OLD_ADDRESS, 0.40),
        (ErrorKind.ADDRESS_NUMBER_TYPO, 0.12),
        (ErrorKind.ADDRESS_STREET_TYPO, 0.14),
        (ErrorKind.ADDRESS_SPLIT_MERGE, 0.08),
        (ErrorKind.ADDRESS_UNIT, 0.14),
        (ErrorKind.ADDRESS_MISSING, 0.12),
    )),
    ("first", 0.17, (
        (ErrorKind.FIRST_TYPO, 0.35),
        (ErrorKind.NICKNAME, 0.30),
        (ErrorKind.FIRST_OTHER, 0.15),
        (ErrorKind.FIRST_MISSING, 0.12),
        (ErrorKind.FIRST_PLACEHOLDER, 0.08),
    )),
    ("last", 0.15, (
        (ErrorKind.LAST_TYPO, 0.35),
        (ErrorKind.LAST_PHONETIC, 0.20),
        (ErrorKind.LAST_OCR, 0.10),
        (ErrorKind.SURNAME_CHANGE, 0.20),
        (ErrorKind.NAME_SWAP, 0.15),
    )),
    ("dob", 0.12, (
        (ErrorKind.DOB_TYPO, 0.25),
        (ErrorKind.DOB_DAY_MONTH, 0.20),
        (ErrorKind.DOB_YEAR, 0.15),
        (ErrorKind.DOB_MISSING, 0.15),
        (ErrorKind.DOB_HOUSEHOLD, 0.12),
        (ErrorKind.DOB_FUTURE, 0.08),
        (ErrorKind.DOB_OCR, 0.05),
    )),
    ("ssn", 0.12, (
        (ErrorKind.SSN_TYPO, 0.42),
        (ErrorKind.SSN_MISSING, 0.30),
        (ErrorKind.SSN_TRANSPOSED, 0.10),
        (ErrorKind.SSN_HOUSEHOLD, 0.10),
        (ErrorKind.SSN_PLACEHOLDER, 0.08),
    )),
    ("zip", 0.08, (
        (ErrorKind.ZIP_TRANSPOSED, 0.40),
        (ErrorKind.ZIP_MISSING, 0.35),
        (ErrorKind.ZIP_PLACEHOLDER, 0.25),
    )),
    ("sex", 0.08, (
        (ErrorKind.SEX_MISSING, 0.60),
        (ErrorKind.SEX_WRONG, 0.40),
    )),
)  # fmt: skip
FIELD_NAMES = tuple(name for name, _, _ in FIELDS)
CARE_KINDS = frozenset(kind for _, _, classes in FIELDS for kind, _ in classes)
# Conventions: applied at the agency's rates whatever the record's care.
CONVENTION_KINDS = frozenset(
    {
        ErrorKind.HYPHEN_PARTIAL,
        ErrorKind.MIDDLE_MISSING,
        ErrorKind.MIDDLE_INITIAL,
        ErrorKind.SUFFIX_DROPPED,
        ErrorKind.RACE_MISSING,
        ErrorKind.ADDRESS_ABBREVIATION,
    }
)


def quality_factor(rates: ErrorRates) -> float:
    """How much more often than typical an agency's records are careless (0 for `clean`)."""
    return rates.first_typo / TYPICAL_ERRORS.first_typo


@dataclass(frozen=True)
class CareMix:
    """Shares of records with 0, 1, 2, ... data-entry errors, from the care levels."""

    counts: tuple[float, ...]

    @classmethod
    def of(cls, quality: float) -> CareMix:
        """The mix for quality factor `quality` (1 typical, 0 no errors)."""
        dirty = [share * quality for _, share, _ in CARE_LEVELS[1:]]
        total = sum(dirty)
        if total > 1.0:
            dirty = [d / total for d in dirty]
        levels = [(1.0 - sum(dirty), CARE_LEVELS[0][2])]
        levels += [(d, counts) for d, (_, _, counts) in zip(dirty, CARE_LEVELS[1:], strict=True)]
        top = max(k for _, counts in levels for k in counts)
        shares = [0.0] * (top + 1)
        for weight, counts in levels:
            for k, p in counts.items():
                shares[k] += weight * p
        return cls(tuple(shares))

    @property
    def mean(self) -> float:
        return sum(k * p for k, p in enumerate(self.counts))


def field_rates(mix: CareMix, fields: tuple[str, ...] = FIELD_NAMES) -> dict[str, float]:
    """Share of records with an error in each field, when only `fields` can be hit.

    Fields are drawn by weight without replacement (successive sampling), so the exact
    inclusion probability sums over every ordered draw of up to four fields.
    """
    weight = {name: share for name, share, _ in FIELDS if name in fields}
    out = dict.fromkeys(weight, 0.0)
    for count, p_count in enumerate(mix.counts):
        if count == 0 or p_count == 0:
            continue
        for order in itertools.permutations(weight, min(count, len(weight))):
            p, left = 1.0, sum(weight.values())
            for name in order:
                p *= weight[name] / left
                left -= weight[name]
            for name in order:
                out[name] += p_count * p
    return out


def expected_rates(quality: float = 1.0, *, ssn: bool = True) -> dict[ErrorKind, float]:
    """Share of records expected to get each data-entry error class (where it applies)."""
    fields = FIELD_NAMES if ssn else tuple(f for f in FIELD_NAMES if f != "ssn")
    by_field = field_rates(CareMix.of(quality), fields)
    return {
        kind: by_field[name] * share
        for name, _, classes in FIELDS
        if name in by_field
        for kind, share in classes
    }
