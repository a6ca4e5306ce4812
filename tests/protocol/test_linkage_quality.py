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
# The realistic model's errors include the address, so its extracts carry it.
WITH_ADDRESS = [*COLUMNS, "middle_name", "address"]


def f1(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float, float]:
    tp = len(found & truth)
    precision, recall = tp / len(found), tp / len(truth)
    return precision, recall, 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize(
    ("errors", "model", "left_ssn", "target"),
    [
        ("typical", "independent", True, 0.997),
        ("typical", "independent", False, 0.99),
        # Errors 2.5 times as often: many records carry two at once.
        ("heavy", "independent", True, 0.99),
        ("heavy", "independent", False, 0.97),
        # Careless records carry two to four errors together, household members' DOBs
        # and SSNs are copied, first names go missing (crosstally/synth/realistic.py).
        ("typical", "realistic", True, 0.985),
        ("typical", "realistic", False, 0.965),
    ],
)
def test_f1_meets_the_targets(errors: str, model: str, left_ssn: bool, target: float) -> None:
    left, right, truth = make_pair(
        left=3000, right=3000, overlap=0.5, seed=2026, left_ssn=left_ssn, error_profile=errors,
        error_model=model,
    )  # fmt: skip
    spec = parse_spec({
        "name": "quality", "agreement": "Q", "kind": "match", "as_of": "2026-06-30",
        "cohorts": {"l": {"node": "L"}, "r": {"node": "R"}},
    })  # fmt: skip
    columns = WITH_ADDRESS if model == "realistic" else COLUMNS
    ref = reference_tally(spec, {"L": NodeData(left, columns), "R": NodeData(right, columns)})
    found = {
        (a.record_id, b.record_id)
        for e in ref.links.entities
        if len(e) == 2
        for a in ref.prepared["l"].persons[e["l"]]
        for b in ref.prepared["r"].persons[e["r"]]
    }
    precision, recall, score = f1(found, truth)
    assert score >= target, f"precision {precision:.4f} recall {recall:.4f} F1 {score:.4f}"
    assert precision >= 0.995, f"precision {precision:.4f}"
    assert spec.linkage.keys.slots <= 48
