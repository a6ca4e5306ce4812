"""Recall by error class: read from the truth's `errors` column and counted by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from crosstally.evaluate.by_error import recall_by_error
from crosstally.evaluate.metrics import read_truth

TRUTH = """agency,record_id,person_id,errors
a,L1,P1,
b,R1,P1,nickname
a,L2,P2,dob_typo;nickname
b,R2,P2,ssn_typo
a,L3,P3,old_address
b,R3,P3,old_address;dob_typo;sex_wrong;several_errors
a,L4,P4,
b,R4,P4,
a,L5,P5,first_typo
b,R9,P9,nickname
"""


@pytest.fixture
def truth_file(tmp_path: Path) -> Path:
    path = tmp_path / "truth.csv"
    path.write_text(TRUTH)
    return path


def test_recall_by_class_equals_a_hand_count(truth_file: Path) -> None:
    truth = read_truth(truth_file, ["L1", "L2", "L3", "L4", "L5"], ["R1", "R2", "R3", "R4", "R9"])
    assert truth.pairs == {("L1", "R1"), ("L2", "R2"), ("L3", "R3"), ("L4", "R4")}
    assert truth.errors is not None and truth.errors["L2"] == ("dob_typo", "nickname")
    classic = {("L1", "R1"), ("L4", "R4"), ("L5", "R9")}  # one false link, not counted
    pet = {("L2", "R2"), ("L3", "R3"), ("L4", "R4")}
    result = recall_by_error(truth, {"classic": classic, "pet": pet})
    assert result is not None
    rows = {r.label: (r.pairs, r.found["classic"], r.found["pet"]) for r in result.classes}
    # Pair classes: P1 {nickname}; P2 {dob_typo, nickname, ssn_typo};
    # P3 {old_address, dob_typo, sex_wrong, several_errors}; P4 {}.
    assert rows == {
        "nickname": (2, 1, 1), "dob_typo": (2, 0, 2), "ssn_typo": (1, 0, 1),
        "old_address": (1, 0, 1), "sex_wrong": (1, 0, 1), "several_errors": (1, 0, 1),
    }  # fmt: skip
    assert [r.label for r in result.classes][:2] == ["dob_typo", "nickname"]  # most pairs first
    # P4 has no error, P1 one, P2 three, P3 three (several_errors marks, it is not an error).
    counts = {r.label: (r.pairs, r.found["classic"], r.found["pet"]) for r in result.by_count}
    assert counts == {"0": (1, 1, 1), "1": (1, 1, 0), "2": (0, 0, 0), "3+": (2, 0, 2)}
    by_count = result.to_json()["by_error_count"]
    assert by_count[1] == {
        "errors": "1", "pairs": 1, "classic": {"found": 1, "recall": 1.0},
        "pet": {"found": 0, "recall": 0.0},
    }  # fmt: skip
    assert by_count[2]["classic"]["recall"] is None


def test_truth_without_error_classes_reports_none(tmp_path: Path) -> None:
    old = tmp_path / "truth.csv"
    old.write_text("agency,record_id,person_id\na,L1,P1\nb,R1,P1\n")
    truth = read_truth(old, ["L1"], ["R1"])
    assert truth.errors is None and truth.pairs == {("L1", "R1")}
    assert recall_by_error(truth, {"classic": {("L1", "R1")}}) is None
    assert recall_by_error(None, {"classic": set()}) is None
