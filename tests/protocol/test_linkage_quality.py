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


@pytest.mark.parametrize(("left_ssn", "target"), [(True, 0.995), (False, 0.985)])
def test_f1_meets_the_targets(left_ssn: bool, target: float) -> None:
    left, right, truth = make_pair(left=3000, right=3000, overlap=0.5, seed=2026, left_ssn=left_ssn)
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
    assert spec.linkage.keys.slots <= 40
