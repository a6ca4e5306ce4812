"""The hub's Fellegi–Sunter model: Splink on DuckDB, string comparators, EM training, blocking.

Comparators are DuckDB's (Jaro–Winkler, Damerau–Levenshtein) through Splink's comparison
library; the extra levels say which data-entry errors a DIH expects (nicknames, swapped
names, a hyphenated surname used in part, day and month swapped). u comes from random
pairs, m from EM on two blocking passes (same DOB; same name), each training what the
other holds fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from crosstally.classic.prepare import HUB_SCHEMA

# Pairs below this match weight cannot be links at any sensible threshold; dropping them
# keeps the scored set small for large inputs.
MIN_WEIGHT = -4.0
U_PAIRS = 2e6
# Splink numbers a comparison's levels from the last (ELSE, 0) up; NULL is -1. First
# name: exact 6, nickname 5, Jaro-Winkler >= 0.92 4, swapped 3, >= 0.8 2, initial 1.
FIRST_ELSE, FIRST_SWAPPED = 0, 3
# SSN: exact 2, one edit 1, different 0.
SSN_EXACT, SSN_DIFFERENT = 2, 0


@dataclass
class ScoredPairs:
    """Candidate record pairs across sources with their posterior log2 odds (match weight)."""

    source_l: np.ndarray
    id_l: np.ndarray
    source_r: np.ndarray
    id_r: np.ndarray
    weight: np.ndarray
    first_name_level: np.ndarray
    ssn_level: np.ndarray
    model: dict[str, Any]

    def __len__(self) -> int:
        return len(self.weight)

    def linkable(self) -> np.ndarray:
        """Pairs a model link may join (the DIH's twin rules).

        Twins share surname, DOB and address, often sex, and often consecutive SSNs, which
        no independence-based model separates from typos. So a model link needs some
        first-name agreement (at least the initial) unless the SSNs are equal, and a close
        first name (exact, nickname, similar or swapped) when both SSNs are given and differ.
        """
        first, ssn = self.first_name_level, self.ssn_level
        some_first = (first != FIRST_ELSE) | (ssn == SSN_EXACT)
        ssn_differs = (ssn >= SSN_DIFFERENT) & (ssn < SSN_EXACT)
        allowed: np.ndarray = some_first & ~(ssn_differs & (first < FIRST_SWAPPED))
        return allowed


def _filled_in(tables: Sequence[pa.Table], column: str) -> int:
    """How many sources fill the column somewhere; below two the comparison says nothing."""
    return sum(1 for t in tables if t.column(column).null_count < len(t))


def _shared(tables: Sequence[pa.Table], columns: Sequence[str]) -> bool:
    """True when some combination of values occurs in two different sources."""
    seen: set[tuple[object, ...]] = set()
    for table in tables:
        values = zip(*(table.column(c).to_pylist() for c in columns), strict=True)
        own = {v for v in values if None not in v}
        if own & seen:
            return True
        seen |= own
    return False


def _names() -> list[cl.CustomComparison]:
    first = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
            cll.CustomLevel(
                "list_has_any(first_forms_l, first_forms_r)", label_for_charts="nickname"
            ),
            cll.JaroWinklerLevel("first_name", 0.92),
            # Each side of a swap counts in its own comparison: a full swap scores in both.
            cll.CustomLevel("first_name_l = last_name_r", label_for_charts="first is last"),
            cll.JaroWinklerLevel("first_name", 0.8),
            cll.CustomLevel(
                "substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
                label_for_charts="same initial",
            ),
            cll.ElseLevel(),
        ],
    )
    last = cl.CustomComparison(
        output_column_name="last_name",
        comparison_levels=[
            cll.NullLevel("last_name"),
            cll.ExactMatchLevel("last_name", term_frequency_adjustments=True),
            cll.CustomLevel(
                "list_has_any(last_parts_l, last_parts_r)", label_for_charts="surname part"
            ),
            cll.JaroWinklerLevel("last_name", 0.92),
            cll.CustomLevel("last_name_l = first_name_r", label_for_charts="last is first"),
            cll.JaroWinklerLevel("last_name", 0.8),
            cll.ElseLevel(),
        ],
    )
    return [first, last]


def _dob() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel(
                "birth_year_l = birth_year_r AND birth_month_l = birth_day_r "
                "AND birth_day_l = birth_month_r",
                label_for_charts="day and month swapped",
            ),
            cll.CustomLevel(
                "(birth_year_l = birth_year_r)::INT + (birth_month_l = birth_month_r)::INT "
                "+ (birth_day_l = birth_day_r)::INT = 2",
                label_for_charts="two of year, month, day",
            ),
            cll.ElseLevel(),
        ],
    )


def _ssn() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="ssn",
        comparison_levels=[
            cll.NullLevel("ssn"),
            cll.ExactMatchLevel("ssn"),
            cll.DamerauLevenshteinLevel("ssn", 1),
            cll.ElseLevel(),
        ],
    )


def _location() -> cl.CustomComparison:
    # One comparison for street, ZIP and town: they are far from independent.
    return cl.CustomComparison(
        output_column_name="location",
        comparison_levels=[
            cll.And(cll.NullLevel("zip"), cll.NullLevel("town"), cll.NullLevel("street")),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("zip")),
            cll.ExactMatchLevel("zip"),
            cll.ExactMatchLevel("town"),
            cll.ElseLevel(),
        ],
    )


def _sex() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="sex",
        comparison_levels=[cll.NullLevel("sex"), cll.ExactMatchLevel("sex"), cll.ElseLevel()],
    )


def _middle() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="middle_initial",
        comparison_levels=[
            cll.NullLevel("middle_initial"),
            cll.ExactMatchLevel("middle_initial"),
            cll.ElseLevel(),
        ],
    )


PREDICTION_BLOCKS: list[Any] = [
    block_on("ssn"),
    block_on("dob"),
    block_on("first_name", "last_name"),
    block_on("soundex_last", "birth_year"),
    block_on("soundex_first", "birth_year", "zip"),
    block_on("soundex_first", "soundex_last"),
    block_on("first_name", "zip"),
    block_on("last_name", "zip"),
    "l.first_name = r.last_name AND l.last_name = r.first_name",
]


def settings_for(tables: Sequence[pa.Table], prior: float) -> SettingsCreator:
    """The model for these sources; comparisons on columns a source never fills are left out."""
    comparisons: list[Any] = [*_names(), _dob()]
    if _filled_in(tables, "ssn") >= 2:
        comparisons.append(_ssn())
    comparisons += [_sex(), _middle(), _location()]
    return SettingsCreator(
        link_type="link_only",
        probability_two_random_records_match=prior,
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=PREDICTION_BLOCKS,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=True,
    )


def score_pairs(tables: Sequence[pa.Table], *, prior: float, seed: int = 2026) -> ScoredPairs:
    """Train the model on these sources (u by sampling, m by EM) and score blocked pairs.

    `prior` is the probability that two random records match; the caller estimates it
    from its deterministic links, as Splink's direct estimate would.
    """
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be a probability strictly between 0 and 1, got {prior}")
    for table in tables:
        if table.schema != HUB_SCHEMA:
            raise ValueError("hub tables must come from crosstally.classic.prepare.hub_table")
    with_ssn = _filled_in(tables, "ssn") >= 2
    db = DuckDBAPI()
    try:
        frames = [db.register(t, table_name=f"source_{i}") for i, t in enumerate(tables)]
        # Splink's own log lines would interleave with the progress display.
        linker = Linker(frames, settings_for(tables, prior), log_level=logging.ERROR)
        training = linker.training
        # One chunk with a seed: reproducible, and faster than Splink's default probing here.
        training.estimate_u_using_random_sampling(
            max_pairs=U_PAIRS, seed=seed, min_count_per_level=None, num_chunks=1
        )
        for columns in (("dob",), ("first_name", "last_name")):
            # With no pair agreeing on the rule (tiny inputs) there is nothing to learn, and
            # Splink's default m values stand in.
            if _shared(tables, columns):
                training.estimate_parameters_using_expectation_maximisation(
                    block_on(*columns), estimate_without_term_frequencies=True
                )
        predictions = linker.inference.predict(
            threshold_match_weight=MIN_WEIGHT, warning_mode="never"
        )
        wanted = predictions.query_sql(
            "SELECT source_dataset_l, unique_id_l, source_dataset_r, unique_id_r, match_weight, "
            f"gamma_first_name, {'gamma_ssn' if with_ssn else '-1'} AS gamma_ssn FROM {{this}}"
        )
        arrow: pa.Table = wanted.as_duckdbpyrelation().to_arrow_table()
        model = linker.misc.save_model_to_json()
    finally:
        db.duckdb_con.close()
    return ScoredPairs(
        source_l=arrow.column("source_dataset_l").to_numpy(zero_copy_only=False),
        id_l=arrow.column("unique_id_l").to_numpy(),
        source_r=arrow.column("source_dataset_r").to_numpy(zero_copy_only=False),
        id_r=arrow.column("unique_id_r").to_numpy(),
        weight=arrow.column("match_weight").to_numpy(),
        first_name_level=arrow.column("gamma_first_name").to_numpy(),
        ssn_level=arrow.column("gamma_ssn").to_numpy(),
        model=model,
    )
