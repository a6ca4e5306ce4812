"""Fellegi–Sunter weights over key-group agreement patterns, estimated by EM.

EM runs over the whole comparison space: every non-candidate pair is counted with the
all-disagree pattern. It sees only pattern counts, accumulated in a fixed order, so the
same counts give bit-identical weights in the clear and under blinding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.errors import InvalidSpec

_EPS = 1e-9
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FSModel:
    """Estimated match share and per-group m (agree | match) and u (agree | non-match)."""

    prior: float
    m: tuple[float, ...]
    u: tuple[float, ...]
    iterations: int

    def log_odds(self, patterns: npt.NDArray[np.int64]) -> FloatArray:
        """Posterior log-odds of a match for each pattern (bit g = agreement on group g)."""
        groups = len(self.m)
        bits = (patterns[:, None] >> np.arange(groups)) & 1
        m, u = np.asarray(self.m), np.asarray(self.u)
        agree_w = np.log(m) - np.log(u)
        disagree_w = np.log1p(-m) - np.log1p(-u)
        weights = np.where(bits == 1, agree_w, disagree_w).sum(axis=1)
        return weights + np.log(self.prior) - np.log1p(-self.prior)

    def to_dict(self) -> dict[str, object]:
        return {"prior": self.prior, "m": list(self.m), "u": list(self.u), "iterations": self.iterations}


def fit_em(
    patterns: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    *,
    groups: int,
    max_iterations: int = 500,
    tolerance: float = 1e-10,
) -> FSModel:
    """Fit the two-class conditional-independence model to pattern counts."""
    if len(patterns) != len(counts) or groups < 1:
        raise InvalidSpec("EM needs one count per pattern and at least one key group")
    order = np.argsort(patterns, kind="stable")
    patterns, weights = patterns[order], counts[order].astype(np.float64)
    total = weights.sum()
    if total <= 0:
        raise InvalidSpec("EM needs at least one compared pair")
    bits = ((patterns[:, None] >> np.arange(groups)) & 1).astype(np.float64)
    candidate_share = weights[patterns != 0].sum() / total
    prior = max(min(candidate_share / 2, 0.5), 1e-12)
    m = np.full(groups, 0.9)
    u = np.clip((weights @ bits) / total, _EPS, 0.5)
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        log_m = bits @ np.log(m) + (1 - bits) @ np.log1p(-m) + np.log(prior)
        log_u = bits @ np.log(u) + (1 - bits) @ np.log1p(-u) + np.log1p(-prior)
        posterior = 1.0 / (1.0 + np.exp(np.clip(log_u - log_m, -700, 700)))
        wm = weights * posterior
        wu = weights - wm
        new_prior = float(np.clip(wm.sum() / total, 1e-15, 1 - 1e-9))
        new_m = np.clip((wm @ bits) / max(wm.sum(), _EPS), _EPS, 1 - _EPS)
        new_u = np.clip((wu @ bits) / max(wu.sum(), _EPS), 1e-15, 1 - _EPS)
        delta = max(abs(new_prior - prior), float(np.abs(new_m - m).max()), float(np.abs(new_u - u).max()))
        prior, m, u = new_prior, new_m, new_u
        if delta < tolerance:
            break
    return FSModel(prior=prior, m=tuple(float(x) for x in m), u=tuple(float(x) for x in u), iterations=iterations)
