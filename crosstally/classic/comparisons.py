"""The hub's comparisons and blocking rules, built from the fields the sources actually fill.

Each comparison is a ladder of agreement levels, most telling first; Splink puts a pair in
the first level it meets and learns each level's m and u. The levels name the data-entry
errors a state Data Integration Hub expects to see between agencies: typos (Damerau–
Levenshtein, Jaro–Winkler), names spelled by ear (metaphone, soundex), nicknames, swapped
first and last names, a hyphenated surname used in part, day and month of birth swapped,
a mistyped digit, a year off by one, a transposed SSN, a moved household. A field no two
sources fill says nothing about a pair, so its comparison and blocking rules are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import block_on

# Level labels the model reads back (the twin rules in `model.ScoredPairs.linkable`).
FIRST_SWAPPED = "names swapped"
MIDDLE_INITIAL = "same middle initial"
SSN_EXACT = "exact SSN"
SSN_TRANSPOSED = "two digits transposed"
SSN_CONSECUTIVE = "serial off by one or two"
SSN_ONE_DIGIT = "one digit"
# First and last name swapped, either side allowed a typo. Only a full swap counts: one
# record's first name equal to the other's surname alone is what siblings look like.
_SWAPPED = (
    "jaro_winkler_similarity(first_name_l, last_name_r) >= 0.9 "
    "AND jaro_winkler_similarity(last_name_l, first_name_r) >= 0.9"
)


@dataclass(frozen=True)
class Fields:
    """Which identifier columns at least two sources fill: only those can be compared."""

    names: bool
    middle: bool
    dob: bool
    ssn: bool
    sex: bool
    street: bool
    zip: bool
    town: bool

    @classmethod
    def of(cls, tables: Sequence[pa.Table]) -> Fields:
        def shared(*columns: str) -> bool:
            return all(filled_in(tables, c) >= 2 for c in columns)

        return cls(
            names=shared("first_name", "last_name"),
            middle=shared("middle_name"),
            dob=shared("dob"),
            ssn=shared("ssn"),
            sex=shared("sex"),
            street=shared("street"),
            zip=shared("zip"),
            town=shared("town"),
        )

    @property
    def location(self) -> bool:
        return self.street or self.zip or self.town


def filled_in(tables: Sequence[pa.Table], column: str) -> int:
    """How many sources fill the column somewhere; below two the comparison says nothing."""
    return sum(1 for t in tables if t.column(column).null_count < len(t))


def gamma(comparison: cl.CustomComparison, label: str) -> int:
    """The gamma value Splink gives the level with this chart label (ELSE is 0, NULL -1)."""
    levels = [lv for lv in comparison.create_comparison_levels() if not lv.is_null_level]
    labels = [lv.create_label_for_charts() for lv in levels]
    return len(levels) - 1 - labels.index(label)


def _level(sql: str, label: str) -> cll.CustomLevel:
    return cll.CustomLevel(sql, label_for_charts=label)


def first_name() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
            _level("list_has_any(first_forms_l, first_forms_r)", "nickname"),
            cll.DamerauLevenshteinLevel("first_name", 1),
            cll.JaroWinklerLevel("first_name", 0.92),
            _level("metaphone_first_l = metaphone_first_r", "same metaphone"),
            # A short form that starts or ends the name: NAT, ALEX, BETH, VANNA.
            _level(
                "least(length(first_name_l), length(first_name_r)) >= 3 AND ("
                "starts_with(first_name_l, first_name_r) "
                "OR starts_with(first_name_r, first_name_l) "
                "OR ends_with(first_name_l, first_name_r) "
                "OR ends_with(first_name_r, first_name_l))",
                "short form",
            ),
            # Known by the middle name: one record's first name is the other's middle name.
            _level(
                "first_name_l = middle_name_r OR middle_name_l = first_name_r",
                "first is the other's middle",
            ),
            # A swap scores in both name comparisons: both names agree, crosswise.
            _level(_SWAPPED, FIRST_SWAPPED),
            _level("soundex_first_l = soundex_first_r", "same soundex"),
            cll.JaroWinklerLevel("first_name", 0.8),
            _level("first_initial_l = first_initial_r", "same initial"),
            cll.ElseLevel(),
        ],
    )


def last_name() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="last_name",
        comparison_levels=[
            cll.NullLevel("last_name"),
            cll.ExactMatchLevel("last_name", term_frequency_adjustments=True),
            _level("list_has_any(last_parts_l, last_parts_r)", "surname part"),
            cll.DamerauLevenshteinLevel("last_name", 1),
            cll.JaroWinklerLevel("last_name", 0.92),
            _level("metaphone_last_l = metaphone_last_r", "same metaphone"),
            _level(_SWAPPED, "names swapped"),
            _level("soundex_last_l = soundex_last_r", "same soundex"),
            cll.JaroWinklerLevel("last_name", 0.8),
            cll.ElseLevel(),
        ],
    )


def middle_name() -> cl.CustomComparison:
    # A full middle name on one side and its initial on the other is the usual disagreement.
    return cl.CustomComparison(
        output_column_name="middle_name",
        comparison_levels=[
            cll.NullLevel("middle_initial"),
            _level(
                "middle_name_l = middle_name_r AND length(middle_name_l) > 1", "same middle name"
            ),
            cll.JaroWinklerLevel("middle_name", 0.9),
            _level("middle_initial_l = middle_initial_r", MIDDLE_INITIAL),
            cll.ElseLevel(),
        ],
    )


def dob() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            _level(
                "birth_year_l = birth_year_r AND birth_month_l = birth_day_r "
                "AND birth_day_l = birth_month_r",
                "day and month swapped",
            ),
            # One mistyped or two transposed digits of YYYYMMDD.
            _level("damerau_levenshtein(dob_digits_l, dob_digits_r) = 1", "one digit"),
            _level(
                "abs(birth_year_l - birth_year_r) = 1 AND birth_month_l = birth_month_r "
                "AND birth_day_l = birth_day_r",
                "year off by one",
            ),
            _level(
                "(birth_year_l = birth_year_r)::INT + (birth_month_l = birth_month_r)::INT "
                "+ (birth_day_l = birth_day_r)::INT = 2",
                "two of year, month, day",
            ),
            cll.ElseLevel(),
        ],
    )


def ssn() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="ssn",
        comparison_levels=[
            cll.NullLevel("ssn"),
            _level("ssn_l = ssn_r", SSN_EXACT),
            _level(
                "damerau_levenshtein(ssn_l, ssn_r) = 1 AND hamming(ssn_l, ssn_r) = 2",
                SSN_TRANSPOSED,
            ),
            # Twins are numbered one after the other: same area and group, serial + 1.
            _level(
                "substr(ssn_l, 1, 5) = substr(ssn_r, 1, 5) AND abs("
                "substr(ssn_l, 6, 4)::INT - substr(ssn_r, 6, 4)::INT) <= 2",
                SSN_CONSECUTIVE,
            ),
            _level("hamming(ssn_l, ssn_r) = 1", SSN_ONE_DIGIT),
            cll.ElseLevel(),
        ],
    )


def sex() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="sex",
        comparison_levels=[cll.NullLevel("sex"), cll.ExactMatchLevel("sex"), cll.ElseLevel()],
    )


def location(fields: Fields) -> cl.CustomComparison:
    """Street, ZIP and town in one comparison: they are far from independent."""
    present = [c for c, on in (("street", fields.street), ("zip", fields.zip),
                               ("town", fields.town)) if on]  # fmt: skip
    levels: list[Any] = [cll.And(*(cll.NullLevel(c) for c in present))]
    if fields.street and fields.zip:
        levels.append(cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("zip")))
    if fields.street:
        levels += [
            cll.ExactMatchLevel("street"),
            _level(
                "street_number_l = street_number_r "
                "AND jaro_winkler_similarity(street_name_l, street_name_r) >= 0.88",
                "house number, similar street",
            ),
        ]
        if fields.zip:
            levels.append(
                _level(
                    "zip_l = zip_r AND damerau_levenshtein(street_l, street_r) <= 2",
                    "same ZIP, street within two edits",
                )
            )
    if fields.zip:
        # A ZIP many records share (an office's, a placeholder) says little: weighted by
        # how common the ZIP is.
        levels.append(cll.ExactMatchLevel("zip", term_frequency_adjustments=True))
    if fields.town:
        levels.append(cll.ExactMatchLevel("town"))
    if fields.zip:
        levels.append(_level("substr(zip_l, 1, 3) = substr(zip_r, 1, 3)", "same ZIP3 area"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(output_column_name="location", comparison_levels=levels)


def comparisons(fields: Fields) -> list[cl.CustomComparison]:
    """Every comparison the filled fields allow, names first."""
    chosen: list[cl.CustomComparison] = []
    if fields.names:
        chosen += [first_name(), last_name()]
    if fields.dob:
        chosen.append(dob())
    if fields.ssn:
        chosen.append(ssn())
    if fields.sex:
        chosen.append(sex())
    if fields.middle:
        chosen.append(middle_name())
    if fields.location:
        chosen.append(location(fields))
    return chosen


def prediction_blocks(fields: Fields) -> list[Any]:
    """Blocking rules wide enough that a true pair with two or three errors meets in one.

    Each rule keeps the candidate set small on its own (a shared rare value or a
    combination); a pair is scored once however many rules it meets.
    """
    rules: list[Any] = []
    if fields.ssn:
        rules.append(block_on("ssn"))
    if fields.dob:
        rules.append(block_on("dob"))
    if fields.names:
        rules += [
            block_on("first_name", "last_name"),
            block_on("soundex_first", "soundex_last"),
            "l.first_name = r.last_name AND l.last_name = r.first_name",
        ]
    if fields.names and fields.dob:
        rules += [
            block_on("soundex_last", "birth_year"),
            block_on("first_name", "birth_year", "birth_month"),
            block_on("first_initial", "birth_month", "birth_day"),
            block_on("soundex_first", "birth_year"),
        ]
    if fields.ssn and fields.names:
        rules.append(block_on("first_initial", "substr(ssn, 6, 4)"))
    if fields.names:
        rules.append(block_on("soundex_last", "first_initial"))
    if fields.zip and fields.names:
        rules += [block_on("first_initial", "zip"), block_on("last_name", "zip")]
    if fields.street and fields.zip:
        rules.append(block_on("street_number", "zip"))
    if fields.street and fields.names:
        rules.append(block_on("street", "first_initial"))
    if fields.town and fields.names:
        rules += [block_on("first_name", "town"), block_on("last_name", "town")]
    return rules


def training_blocks(fields: Fields) -> list[tuple[str, ...]]:
    """EM passes: each holds the fields it blocks on fixed and trains every other one.

    Together they train every comparison; a pass on the address is used only when neither
    DOB nor SSN can be blocked on, as households share addresses and muddy the estimate.
    """
    passes: list[tuple[str, ...]] = []
    if fields.dob:
        passes.append(("dob",))
    if fields.names:
        passes.append(("first_name", "last_name"))
    if fields.ssn:
        passes.append(("ssn",))
    if not (fields.dob or fields.ssn) and fields.street and fields.zip:
        passes.append(("street", "zip"))
    return passes
