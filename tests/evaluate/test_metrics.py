"""Truth files, link quality figures and concordance."""

from __future__ import annotations

from pathlib import Path

import pytest

from crosstally.evaluate.metrics import Truth, concordance, quality, read_truth
from crosstally.extract import ExtractError


def test_truth_as_pairs_or_as_persons(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("left_id,right_id\nL1,R1\nL2,R2\nL9,R1\n")
    truth = read_truth(pairs, ["L1", "L2", "L3"], ["R1", "R2"])
    assert truth.pairs == {("L1", "R1"), ("L2", "R2")} and truth.unknown == 1
    persons = tmp_path / "truth.csv"
    persons.write_text("agency,record_id,person_id\na,L1,P1\na,L2,P1\nb,R1,P1\nb,R2,P2\na,L3,P3\n")
    truth = read_truth(persons, ["L1", "L2", "L3"], ["R1", "R2"])
    assert truth.pairs == {("L1", "R1"), ("L2", "R1")}
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ExtractError, match="needs columns left_id,right_id"):
        read_truth(bad, [], [])


def test_quality_and_concordance() -> None:
    truth = Truth(frozenset({("L1", "R1"), ("L2", "R2"), ("L3", "R3"), ("L4", "R4")}), "t", 0)
    found = {("L1", "R1"), ("L2", "R2"), ("L3", "R9")}
    q = quality(found, 10, truth)
    assert (q.links, q.true_links, q.match_rate) == (3, 2, 0.3)
    assert q.precision == pytest.approx(2 / 3) and q.recall == pytest.approx(0.5)
    assert q.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert quality(found, 10, None).precision is None
    c = concordance(found, {("L1", "R1"), ("L4", "R4")})
    assert c.counts() == {"both": 1, "classic_only": 2, "pet_only": 1}
