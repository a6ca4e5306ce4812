"""Linkage quality on generated agency pairs with realistic errors (cleartext reference path).

The private protocol gives exactly the reference's links (test_tally), so the
reference's precision and recall are the private protocol's.
"""

from __future__ import annotations

import pytest

from crosstally.synth import make_pair
from protocol.driver import NodeData, reference_tally
from protocol.spec import parse_spec

COLUMNS = ["record_id", "first_name", "last_name", "dob", "sex", "ssn", "zip"]


def f1(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float, float]:
    tp = len(found & truth)
    precision, recall = tp / len(found), tp / len(truth)
    return precision, recall, 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize(
    ("errors", "left_ssn", "target"),
    [
        ("typical", True, 0.997),
        ("typical", False, 0.99),
        # Errors 2.5 times as often: many records carry two at once.
        ("heavy", True, 0.99),
        ("heavy", False, 0.97),
    ],
)
def test_f1_meets_the_targets(errors: str, left_ssn: bool, target: float) -> None:
    left, right, truth = make_pair(
        left=3000, right=3000, overlap=0.5, seed=2026, left_ssn=left_ssn, error_profile=errors
    )
    spec = parse_spec({
        "name": "quality", "agreement": "Q", "kind": "match", "as_of": "2026-06-30",
        "cohorts": {"l": {"node": "L"}, "r": {"node": "R"}},
    })  # fmt: skip
    ref = reference_tally(spec, {"L": NodeData(left, COLUMNS), "R": NodeData(right, COLUMNS)})
    found = {
        (a.record_id, b.record_id)
        for e in ref.links.entities
        if len(e) == 2
        for a in ref.prepared["l"].persons[e["l"]]
        for b in ref.prepared["r"].persons[e["r"]]
    }
    precision, recall, score = f1(found, truth)
    assert score >= target, f"precision {precision:.4f} recall {recall:.4f} F1 {score:.4f}"
    assert spec.linkage.keys.slots <= 48
