"""Differentially private noise for count tables: discrete Laplace, drawn by OpenDP.

One person is one population entity and falls in exactly one cell of a tally, so adding or
removing a person changes the vector of cell counts by 1 in L1 distance. Discrete Laplace
noise of scale 1/epsilon on every cell then makes the noisy cells epsilon-DP (OpenDP's
`make_laplace` on integer vectors, which states the same loss through `map(1)`); margins,
the total, clamping at 0, suppression and rounding are computed from the noisy cells alone,
and post-processing costs no privacy. docs/agreements.md states the caveats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import InvalidSpec

# Draws noisy values for exact ones; tests may inject one (known answers), the hub never does.
Sampler = Callable[[list[int]], list[int]]


def _opendp_sampler(scale: float) -> Sampler:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    measurement = dp.m.make_laplace(*space, scale=scale)

    def draw(values: list[int]) -> list[int]:
        return [int(v) for v in measurement(values)]

    return draw


def privacy_loss(scale: float) -> float:
    """Epsilon of discrete Laplace noise of `scale` on integer vectors of L1 sensitivity 1,
    as OpenDP's privacy map states it."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    return float(dp.m.make_laplace(*space, scale=scale).map(1))  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class DiscreteLaplace:
    """Noise of scale 1/epsilon on every cell count; `sampler` is for tests only."""

    epsilon: float
    sampler: Sampler | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 10.0:
            raise InvalidSpec(f"epsilon {self.epsilon!r}: must be above 0 and at most 10")

    @property
    def scale(self) -> float:
        return 1.0 / self.epsilon

    def apply(self, counts: Sequence[int]) -> list[int]:
        """Noisy counts, one fresh draw per count (from the OS's randomness, inside OpenDP)."""
        draw = self.sampler or _opendp_sampler(self.scale)
        noisy = draw(list(counts))
        if len(noisy) != len(counts):
            raise InvalidSpec("the noise sampler returned the wrong number of counts")
        return noisy

    def statement(self) -> dict[str, Any]:
        """What a released table says about its noise."""
        return {
            "mechanism": "discrete_laplace",
            "scale": self.scale,
            "epsilon": self.epsilon,
            "sensitivity": 1,
            "library": "opendp",
        }
