"""Evaluate two agency extracts: classic hub linkage and the private protocol on the same records.

Both methods read the same records; the report compares their links with each other and,
when given, with the true pairs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crosstally.classic.link import link_sources
from crosstally.evaluate.by_error import ErrorRecall, recall_by_error
from crosstally.evaluate.inputs import AgencyInput, redacted
from crosstally.evaluate.metrics import (
    Concordance,
    Pair,
    Quality,
    Truth,
    concordance,
    discordant_sample,
    quality,
    read_truth,
)
from crosstally.evaluate.pet import run_pet

Step = Callable[[str], None]
METHODS = ("classic", "pet")
PROBLEMS_IN_JSON = 200


@dataclass
class MethodRun:
    """One method's links, time, candidate-pair scores (log2 odds) and method-specific figures."""

    name: str
    pairs: set[Pair]
    seconds: float
    log2_odds: np.ndarray
    true_candidate: np.ndarray | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PairEvaluation:
    """Everything `crosstally evaluate` reports for two extracts."""

    left: AgencyInput
    right: AgencyInput
    truth: Truth | None
    keys: str
    classic: MethodRun
    pet: MethodRun
    sample_size: int = 20

    def method(self, name: str) -> MethodRun:
        return self.classic if name == "classic" else self.pet

    def quality(self, name: str) -> Quality:
        return quality(self.method(name).pairs, len(self.left.records), self.truth)

    def concordance(self) -> Concordance:
        return concordance(self.classic.pairs, self.pet.pairs)

    def error_recall(self) -> ErrorRecall | None:
        """Recall by error class for both methods; None unless the truth names classes."""
        return recall_by_error(self.truth, {m: self.method(m).pairs for m in METHODS})

    def to_json(self) -> dict[str, Any]:
        methods: dict[str, Any] = {}
        for name in METHODS:
            q, run = self.quality(name), self.method(name)
            methods[name] = {
                "links": q.links, "match_rate": q.match_rate, "precision": q.precision,
                "recall": q.recall, "f1": q.f1, "seconds": round(run.seconds, 3),
                "true_links": q.true_links, **run.details,
            }  # fmt: skip
        agreement = self.concordance()
        by_error = self.error_recall()
        return {
            "left_records": len(self.left.records),
            "right_records": len(self.right.records),
            "methods": methods,
            "concordance": agreement.counts(),
            "truth": None
            if self.truth is None
            else {
                "source": self.truth.source,
                "pairs": len(self.truth.pairs),
                "pairs_naming_unknown_records": self.truth.unknown,
            },
            "recall_by_error": None if by_error is None else by_error.to_json(),
            "discordant_sample": {
                "classic_only": discordant_sample(
                    agreement.classic_only, self.truth, self.sample_size
                ),
                "pet_only": discordant_sample(agreement.pet_only, self.truth, self.sample_size),
            },
            "inputs": {side.side: _input_json(side) for side in (self.left, self.right)},
            "keys": self.keys,
        }


def _input_json(side: AgencyInput) -> dict[str, Any]:
    problems = side.extract.problems
    return {
        "source": side.source,
        "rows_read": side.extract.rows_read,
        "quality": side.profile.to_dict(),
        "problems": len(problems),
        "problem_sample": [redacted(p) for p in problems[:PROBLEMS_IN_JSON]],
    }


def evaluate_pair(
    left: AgencyInput,
    right: AgencyInput,
    *,
    truth_path: Path | None = None,
    keys: str = "auto",
    as_of: dt.date | None = None,
    step: Step | None = None,
    sample_size: int = 20,
) -> PairEvaluation:
    """Link the two extracts both ways and collect what the report shows."""
    report = step or (lambda _: None)
    today = as_of or dt.date.today()
    truth = None
    if truth_path is not None:
        ids = [r.record_id for r in left.records], [r.record_id for r in right.records]
        truth = read_truth(truth_path, *ids)
    hub = link_sources({"left": left.records, "right": right.records}, today=today, step=report)
    classic_pairs = hub.record_pairs("left", "right")
    scores = hub.scores
    classic_scores: list[tuple[list[str], list[str]]] = []
    weights = np.zeros(0)
    if scores is not None:
        src = {"left": left.records, "right": right.records}
        for sl, il, sr, ir in zip(
            scores.source_l.tolist(), scores.id_l.tolist(),
            scores.source_r.tolist(), scores.id_r.tolist(), strict=True,
        ):  # fmt: skip
            a, b = src[sl][il].record_id, src[sr][ir].record_id
            classic_scores.append(([a], [b]) if sl == "left" else ([b], [a]))
        weights = scores.weight
    classic = MethodRun(
        "classic",
        classic_pairs,
        hub.seconds,
        weights,
        _true_candidates(classic_scores, truth),
        {"rules": dict(sorted(hub.rules().items())), "scored_pairs": len(weights)},
    )
    report("PET: blinding, ring, joiner linkage and Paillier tally (real cryptography)")
    pet_run = run_pet(
        left.records,
        right.records,
        columns=(left.extract.columns, right.extract.columns),
        keys=keys,
        as_of=today,
    )
    pet = MethodRun(
        "pet",
        pet_run.pairs,
        pet_run.seconds,
        pet_run.log2_odds,
        _true_candidates(pet_run.candidate_records, truth),
        {
            "tokens_per_record": float(pet_run.tokens_per_record),
            "bytes_exchanged": pet_run.bytes_exchanged,
            "messages": pet_run.messages,
            "rows_after_deduplication": pet_run.rows,
            "candidate_pairs": len(pet_run.log2_odds),
        },
    )
    return PairEvaluation(left, right, truth, keys, classic, pet, sample_size)


def _true_candidates(
    candidates: Sequence[tuple[list[str], list[str]]], truth: Truth | None
) -> np.ndarray | None:
    """For each scored pair of persons, whether any of their record pairs is a true pair."""
    if truth is None:
        return None
    pairs = truth.pairs
    return np.array(
        [any((a, b) in pairs for a in ls for b in rs) for ls, rs in candidates], dtype=bool
    )
