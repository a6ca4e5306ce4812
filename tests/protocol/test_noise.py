"""Differentially private release: OpenDP's discrete Laplace noise on every released count."""

from __future__ import annotations

import math

import pytest

from protocol.disclosure import audit, check_release, protect
from protocol.errors import InvalidSpec
from protocol.noise import DiscreteLaplace, privacy_loss

DRAWS = 20_000


def test_opendp_states_epsilon_one_over_the_scale_for_counts() -> None:
    assert privacy_loss(2.0) == pytest.approx(0.5)
    assert DiscreteLaplace(epsilon=0.5).scale == 2.0


def test_the_noise_has_the_discrete_laplace_distribution() -> None:
    # Loose bounds, many standard errors wide: this test does not flake.
    noise = DiscreteLaplace(epsilon=0.5).apply([0] * DRAWS)
    assert all(isinstance(v, int) for v in noise)
    b = 2.0
    q = math.exp(-1 / b)
    variance = 2 * q / (1 - q) ** 2  # 7.83; the standard error of the mean is 0.02
    mean = sum(noise) / DRAWS
    assert abs(mean) < 0.25
    observed = sum((v - mean) ** 2 for v in noise) / DRAWS
    assert 0.75 * variance < observed < 1.25 * variance
    zeros = noise.count(0) / DRAWS  # P(0) = (1 - q) / (1 + q) = 0.245
    assert abs(zeros - (1 - q) / (1 + q)) < 0.03
    assert max(noise) > 5 and min(noise) < -5


def test_every_cell_gets_its_own_draw() -> None:
    noisy = DiscreteLaplace(epsilon=0.1).apply([1000] * 200)
    assert len(set(noisy)) > 20


def test_margins_and_total_are_sums_of_the_noisy_cells() -> None:
    counts = {("F", "a"): 40, ("F", "b"): 50, ("M", "a"): 60, ("M", "b"): 70}
    plus_three = DiscreteLaplace(epsilon=1.0, sampler=lambda v: [x + 3 for x in v])
    table = protect(counts, dimensions=("sex", "group"), min_cell=11, noise=plus_three)
    assert [c.count for c in table.cells] == [43, 53, 63, 73]
    assert [c.count for c in table.margins["sex"]] == [96, 136]
    assert table.total.count == 232
    assert table.to_dict()["noise"] == {
        "mechanism": "discrete_laplace",
        "scale": 1.0,
        "epsilon": 1.0,
        "sensitivity": 1,
        "library": "opendp",
    }
    assert "noise of scale 1" in table.notes[0]


def test_noise_below_zero_publishes_zero_and_small_noisy_cells_are_suppressed() -> None:
    counts = {("a",): 2, ("b",): 30, ("c",): 30}
    shift = DiscreteLaplace(epsilon=1.0, sampler=lambda v: [v[0] - 5, v[1] - 25, v[2]])
    table = protect(counts, dimensions=("g",), min_cell=11, noise=shift)
    # a: 2 - 5 -> 0 (shown as 0); b: 30 - 25 = 5 is small, so hidden, with a complement.
    assert table.cells[0].count == 0
    assert table.cells[1].status == "suppressed"
    check_release(table)
    assert all(r.protects(11) for r in audit(table))


def test_a_real_noisy_table_passes_the_disclosure_audit() -> None:
    counts = {(s, g): 200 + 10 * i for i, (s, g) in enumerate([("F", "a"), ("F", "b"),
                                                              ("M", "a"), ("M", "b")])}  # fmt: skip
    table = protect(counts, dimensions=("sex", "group"), noise=DiscreteLaplace(epsilon=0.5))
    check_release(table)
    assert table.noise is not None and table.noise["scale"] == 2.0
    assert table.total.count == sum(c.count or 0 for c in table.cells)


def test_a_table_without_noise_says_nothing_about_noise() -> None:
    table = protect({("a",): 20, ("b",): 30}, dimensions=("g",))
    assert "noise" not in table.to_dict() and table.noise is None


@pytest.mark.parametrize("epsilon", [0.0, -1.0, 11.0])
def test_an_epsilon_out_of_range_is_refused(epsilon: float) -> None:
    with pytest.raises(InvalidSpec, match="epsilon"):
        DiscreteLaplace(epsilon=epsilon)
