"""Recall by error class: which data-entry errors each method survives, from the truth's classes.

A true pair carries the union of both records' error classes. Per class: how many true
pairs carry it and how many of them each method found; and the same by how many errors the
pair carries (0, 1, 2, 3 or more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from crosstally.evaluate.metrics import Pair, Truth

# The realistic model's summary class for a careless record: it marks the record, it is
# not an error of its own, so it is reported as a class but not counted as one more error.
SUMMARY_CLASSES = frozenset({"several_errors"})
COUNT_BANDS = ("0", "1", "2", "3+")


@dataclass(frozen=True)
class RecallRow:
    """One class (or error count): its true pairs and how many each method found."""

    label: str
    pairs: int
    found: Mapping[str, int]

    def recall(self, method: str) -> float | None:
        return self.found[method] / self.pairs if self.pairs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            **{m: {"found": k, "recall": self.recall(m)} for m, k in self.found.items()},
        }


@dataclass(frozen=True)
class ErrorRecall:
    """Recall by error class and by number of errors on the pair, for every method."""

    classes: list[RecallRow]
    by_count: list[RecallRow]

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": [{"class": r.label, **r.to_json()} for r in self.classes],
            "by_error_count": [{"errors": r.label, **r.to_json()} for r in self.by_count],
        }


def pair_classes(pair: Pair, errors: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """The pair's error classes: the union of both records' classes."""
    return frozenset(errors.get(pair[0], ())) | frozenset(errors.get(pair[1], ()))


def error_count(classes: Set[str]) -> int:
    """How many errors the pair carries (distinct classes, summary classes not counted)."""
    return len(classes - SUMMARY_CLASSES)


def recall_by_error(truth: Truth | None, links: Mapping[str, Set[Pair]]) -> ErrorRecall | None:
    """Per class and per error count, true pairs and each method's found pairs; None when
    the truth names no error classes."""
    if truth is None or truth.errors is None:
        return None
    methods: Sequence[str] = list(links)
    class_pairs: dict[str, int] = {}
    class_found: dict[str, dict[str, int]] = {}
    band_pairs = dict.fromkeys(COUNT_BANDS, 0)
    band_found = {b: dict.fromkeys(methods, 0) for b in COUNT_BANDS}
    for pair in sorted(truth.pairs):
        classes = pair_classes(pair, truth.errors)
        band = COUNT_BANDS[min(error_count(classes), len(COUNT_BANDS) - 1)]
        band_pairs[band] += 1
        hit = [m for m in methods if pair in links[m]]
        for m in hit:
            band_found[band][m] += 1
        for name in classes:
            class_pairs[name] = class_pairs.get(name, 0) + 1
            found = class_found.setdefault(name, dict.fromkeys(methods, 0))
            for m in hit:
                found[m] += 1
    # Commonest class first; ties by name, so the order is reproducible.
    order = sorted(class_pairs, key=lambda c: (-class_pairs[c], c))
    return ErrorRecall(
        [RecallRow(c, class_pairs[c], class_found[c]) for c in order],
        [RecallRow(b, band_pairs[b], band_found[b]) for b in COUNT_BANDS],
    )
