"""The hub's Fellegi–Sunter model: Splink on DuckDB, trained by EM, scored over wide blocking.

The comparisons and blocking rules are in `crosstally.classic.comparisons`. u comes from
random pairs; m from EM on several blocking passes (same DOB; same name; same SSN), each
training what the others hold fixed. Exact first and last names get term-frequency
adjustments, so a shared rare surname counts for more than a shared common one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from crosstally.classic.comparisons import (
    FIRST_SWAPPED,
    MIDDLE_INITIAL,
    SSN_CONSECUTIVE,
    SSN_EXACT,
    SSN_ONE_DIGIT,
    SSN_TRANSPOSED,
    Fields,
    comparisons,
    first_name,
    gamma,
    middle_name,
    prediction_blocks,
    ssn,
    training_blocks,
)
from crosstally.classic.prepare import HUB_SCHEMA

# Pairs below this match weight cannot be links at any sensible threshold; dropping them
# keeps the scored set small for large inputs.
MIN_WEIGHT = -4.0
U_PAIRS = 5e6
# Splink numbers a comparison's levels from the last (ELSE, 0) up; NULL is -1.
FIRST_ELSE, FIRST_CLOSE = 0, gamma(first_name(), FIRST_SWAPPED)
SSN_DIFFERENT, SSN_SAME = 0, gamma(ssn(), SSN_EXACT)
SSN_SWAP, SSN_TWIN = gamma(ssn(), SSN_TRANSPOSED), gamma(ssn(), SSN_CONSECUTIVE)
SSN_DIGIT = gamma(ssn(), SSN_ONE_DIGIT)
DOB_ELSE = 0
MIDDLE_AGREES = gamma(middle_name(), MIDDLE_INITIAL)


@dataclass
class ScoredPairs:
    """Candidate record pairs across sources with their posterior log2 odds (match weight)."""

    source_l: np.ndarray
    id_l: np.ndarray
    source_r: np.ndarray
    id_r: np.ndarray
    weight: np.ndarray
    first_name_level: np.ndarray
    middle_level: np.ndarray
    ssn_level: np.ndarray
    dob_level: np.ndarray
    model: dict[str, Any]

    def __len__(self) -> int:
        return len(self.weight)

    def linkable(self) -> np.ndarray:
        """Pairs a model link may join (the DIH's twin and household rules).

        Twins share surname, DOB and address, often sex, and consecutive SSNs, which no
        independence-based model separates from typos; a household shares all but the DOB,
        and a child's record may carry a parent's SSN. So the first names must say it is
        one person, the more so the less the SSNs do:

        - first names close (exact, nickname, short form, a typo, same sound, the other's
          middle name, swapped): any SSN;
        - first name missing on one side: any SSN but a consecutive one (a twin's);
        - first names loosely alike (same soundex or initial, Jaro–Winkler >= 0.8): SSNs
          equal, missing, or one typo (one digit, two transposed) apart;
        - first names unlike: SSNs equal (and DOBs not unlike: not a parent's SSN), or an
          SSN missing or one typo apart when the middle names agree (twins rarely share one).
        """
        first, middle, ssn_, dob_ = (
            self.first_name_level,
            self.middle_level,
            self.ssn_level,
            self.dob_level,
        )
        close = first >= FIRST_CLOSE
        missing = first < FIRST_ELSE
        loose = (first > FIRST_ELSE) & ~close
        unlike = first == FIRST_ELSE
        same = ssn_ == SSN_SAME
        typo = (ssn_ == SSN_SWAP) | (ssn_ == SSN_DIGIT)
        no_ssn = ssn_ < SSN_DIFFERENT
        allowed: np.ndarray = (
            close
            | (missing & (ssn_ != SSN_TWIN))
            | (loose & (same | typo | no_ssn))
            | (unlike & same & (dob_ != DOB_ELSE))
            | (unlike & (typo | no_ssn) & (middle >= MIDDLE_AGREES))
        )
        return allowed


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


def settings_for(fields: Fields, prior: float) -> SettingsCreator:
    """The model for these sources; comparisons on fields no two sources fill are left out."""
    return SettingsCreator(
        link_type="link_only",
        probability_two_random_records_match=prior,
        unique_id_column_name="unique_id",
        comparisons=list[Any](comparisons(fields)),
        blocking_rules_to_generate_predictions=prediction_blocks(fields),
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
    fields = Fields.of(tables)
    if not (comparisons(fields) and prediction_blocks(fields)):
        return _nothing_scored()
    db = DuckDBAPI()
    try:
        frames = [db.register(t, table_name=f"source_{i}") for i, t in enumerate(tables)]
        # Splink's own log lines would interleave with the progress display.
        linker = Linker(frames, settings_for(fields, prior), log_level=logging.ERROR)
        training = linker.training
        # One chunk with a seed: reproducible, and faster than Splink's default probing here.
        training.estimate_u_using_random_sampling(
            max_pairs=U_PAIRS, seed=seed, min_count_per_level=None, num_chunks=1
        )
        for columns in training_blocks(fields):
            # With no pair agreeing on the rule (tiny inputs) there is nothing to learn, and
            # Splink's default m values stand in.
            if _shared(tables, columns):
                training.estimate_parameters_using_expectation_maximisation(
                    block_on(*columns), estimate_without_term_frequencies=True
                )
        predictions = linker.inference.predict(
            threshold_match_weight=MIN_WEIGHT, warning_mode="never"
        )
        first = "gamma_first_name" if fields.names else "-1"
        same_ssn = "gamma_ssn" if fields.ssn else "-1"
        middle = "gamma_middle_name" if fields.middle else "-1"
        birth = "gamma_dob" if fields.dob else "-1"
        wanted = predictions.query_sql(
            "SELECT source_dataset_l, unique_id_l, source_dataset_r, unique_id_r, match_weight, "
            f"{first} AS first_level, {middle} AS middle_level, {same_ssn} AS ssn_level, "
            f"{birth} AS dob_level FROM {{this}}"
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
        first_name_level=arrow.column("first_level").to_numpy(),
        middle_level=arrow.column("middle_level").to_numpy(),
        ssn_level=arrow.column("ssn_level").to_numpy(),
        dob_level=arrow.column("dob_level").to_numpy(),
        model=model,
    )


def _nothing_scored() -> ScoredPairs:
    """No field two sources share: there is no model to train and no pair to score."""
    empty = np.zeros(0, dtype=np.int64)
    return ScoredPairs(
        np.zeros(0, dtype=object), empty, np.zeros(0, dtype=object), empty,
        np.zeros(0), empty, empty, empty, empty, {},
    )  # fmt: skip
