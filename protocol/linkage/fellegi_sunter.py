"""Fellegi–Sunter weights over comparison levels derived from key-group agreement, fit by EM.

Key groups overlap (a record that agrees on exact name+DOB also agrees on most typo
groups), so treating every group as an independent binary comparison would stack
disagreement penalties on pairs with one typo. A profile therefore assigns groups to
a few *features* (SSN, name with DOB, ZIP) and ranks the groups within each; a
pair's level on a feature is its best-ranked agreeing group, or "none". EM fits the
usual two-class model with categorical m and u per feature.

EM runs over the whole comparison space: every non-candidate pair is counted at the
"none" level on every feature. It sees only level counts, accumulated in a fixed
order, so the same counts give bit-identical weights in the clear and under blinding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.errors import InvalidSpec

SMOOTHING = 0.5
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Comparison:
    """Per feature, the pattern bits of its groups in rank order (best first)."""

    names: tuple[str, ...]
    bits: tuple[tuple[int, ...], ...]
    # A pair may link only if it agrees on one of these groups (a bit mask; 0: any pair).
    linkable: int = 0
    # (bit, feature): agreement on that group shows a field missing on one side which
    # every group of the feature reads, so the feature was not compared: its "none"
    # becomes the null level, which weighs nothing (a missing value is no disagreement).
    nulls: tuple[tuple[int, int], ...] = ()

    def may_link(self, patterns: IntArray) -> npt.NDArray[np.bool_]:
        """Which patterns satisfy the profile's rule for a link (all of them without one)."""
        if not self.linkable:
            return np.ones(len(patterns), dtype=bool)
        allowed: npt.NDArray[np.bool_] = (patterns & self.linkable) != 0
        return allowed

    def levels(self, patterns: IntArray) -> IntArray:
        """Level of each pattern on each feature: index of the best agreeing group, else "none".

        "None" is `len(bits)`; the null level (not compared) is one past it.
        """
        out = np.empty((len(patterns), len(self.bits)), dtype=np.int64)
        for f, bits in enumerate(self.bits):
            level = np.full(len(patterns), len(bits), dtype=np.int64)
            for rank in range(len(bits) - 1, -1, -1):
                level[(patterns >> bits[rank]) & 1 == 1] = rank
            out[:, f] = level
        for bit, f in self.nulls:
            none = len(self.bits[f])
            shown = ((patterns >> bit) & 1 == 1) & (out[:, f] == none)
            out[shown, f] = none + 1
        return out

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of levels per feature, "none" included."""
        return tuple(len(b) + 1 for b in self.bits)


@dataclass(frozen=True)
class FSModel:
    """Estimated match share and, per feature, P(level | match) and P(level | non-match)."""

    prior: float
    m: tuple[tuple[float, ...], ...]
    u: tuple[tuple[float, ...], ...]
    iterations: int

    def log_odds(self, levels: IntArray) -> FloatArray:
        """Posterior log-odds of a match for rows of feature levels (the null level adds 0)."""
        score = np.full(len(levels), np.log(self.prior) - np.log1p(-self.prior))
        for f, (m, u) in enumerate(zip(self.m, self.u, strict=True)):
            weight = np.append(np.log(np.asarray(m)) - np.log(np.asarray(u)), 0.0)
            score += weight[levels[:, f]]
        return score

    def to_dict(self) -> dict[str, object]:
        return {"prior": self.prior, "m": [list(x) for x in self.m], "u": [list(x) for x in self.u],
                "iterations": self.iterations}  # fmt: skip


def level_frequencies(levels: IntArray, counts: IntArray, sizes: Sequence[int]) -> list[FloatArray]:
    """Per feature, the smoothed share of compared pairs at each level (null left out)."""
    weights = counts.astype(np.float64)
    return [
        _normalize(
            np.bincount(levels[:, f], weights=weights, minlength=size + 1)[:size].astype(np.float64)
        )
        for f, size in enumerate(sizes)
    ]


def fit_em(
    levels: IntArray,
    counts: IntArray,
    *,
    sizes: Sequence[int],
    u: Sequence[FloatArray] | None = None,
    max_iterations: int = 1000,
    tolerance: float = 1e-10,
) -> FSModel:
    """Fit the two-class conditional-independence model to counts of level vectors.

    `levels` holds distinct level vectors (the last level of each feature is "none").
    With `u` given (level frequencies among known non-matches), EM estimates only the
    prior and m: with few features the full latent-class model is not identifiable
    (two categorical features never are), and EM then finds "agrees on ZIP" as easily
    as "is the same person".
    """
    fixed_u = [np.asarray(x, dtype=np.float64) for x in u] if u is not None else None
    if len(levels) != len(counts) or not sizes or levels.shape[1:] != (len(sizes),):
        raise InvalidSpec("EM needs one count per level vector and one level per feature")
    order = np.lexsort(levels.T[::-1])
    levels, weights = levels[order], counts[order].astype(np.float64)
    total = weights.sum()
    if total <= 0:
        raise InvalidSpec("EM needs at least one compared pair")
    # The null level's row is all zeros: such a pair adds nothing to that feature's
    # likelihood or to its m and u.
    onehots = [np.eye(size + 1, size)[levels[:, f]] for f, size in enumerate(sizes)]
    # Start from a labelling, not from parameters: a pair is a match when it reaches the
    # best level of some feature. Parameter starts let EM settle on "agrees on ZIP" as
    # the match class; this start is data-driven and the same in the clear and blinded.
    posterior = (levels == 0).any(axis=1).astype(np.float64)
    if not posterior.any():
        posterior = (levels < np.asarray(sizes) - 1).any(axis=1).astype(np.float64)
    prior, m, u_est = _maximize(weights, posterior, onehots, total)
    u_now = fixed_u or u_est
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        log_m = np.full(len(levels), np.log(prior))
        log_u = np.full(len(levels), np.log1p(-prior))
        for oh, mf, uf in zip(onehots, m, u_now, strict=True):
            log_m += oh @ np.log(mf)
            log_u += oh @ np.log(uf)
        posterior = 1.0 / (1.0 + np.exp(np.clip(log_u - log_m, -700, 700)))
        new_prior, new_m, new_u = _maximize(weights, posterior, onehots, total)
        new_u = fixed_u or new_u
        delta = max(
            abs(new_prior - prior),
            max(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)),
            max(float(np.abs(a - b).max()) for a, b in zip(new_u, u_now, strict=True)),
        )
        prior, m, u_now = new_prior, new_m, new_u
        if delta < tolerance:
            break
    return FSModel(
        prior=prior,
        m=tuple(tuple(float(x) for x in mf) for mf in m),
        u=tuple(tuple(float(x) for x in uf) for uf in u_now),
        iterations=iterations,
    )


def _maximize(
    weights: FloatArray, posterior: FloatArray, onehots: Sequence[FloatArray], total: float
) -> tuple[float, list[FloatArray], list[FloatArray]]:
    wm = weights * posterior
    wu = weights - wm
    prior = float(np.clip(wm.sum() / total, 1e-15, 1 - 1e-9))
    return prior, [_normalize(wm @ oh) for oh in onehots], [_normalize(wu @ oh) for oh in onehots]


def _normalize(values: FloatArray) -> FloatArray:
    # Half a pair of pseudo-count per level keeps unseen levels from weights of +-27 nats.
    smoothed = values + SMOOTHING
    out: FloatArray = smoothed / smoothed.sum()
    return out
