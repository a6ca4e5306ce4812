"""Candidate pairs (rows sharing a token) and their agreement patterns over key groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int64]

# A token shared by more than this many cross pairs (a common name in one birth year)
# proposes no candidates on its own; it still counts as agreement for pairs found
# through rarer tokens. The rule depends only on token counts, so it is the same in
# the clear and under blinding.
MAX_PAIRS_PER_TOKEN = 64
_PATTERN_CHUNK = 200_000


def candidate_pairs(
    left: IdArray, right: IdArray, *, max_pairs_per_token: int = MAX_PAIRS_PER_TOKEN
) -> tuple[IdArray, IdArray]:
    """Row indices (i, j) of every pair sharing at least one proposing token, sorted."""
    lt, lr = _flatten(left)
    rt, rr = _flatten(right)
    l_tokens, l_start, l_count = _runs(lt)
    r_tokens, r_start, r_count = _runs(rt)
    _, li, ri = np.intersect1d(l_tokens, r_tokens, assume_unique=True, return_indices=True)
    ca, cb = l_count[li], r_count[ri]
    keep = ca * cb <= max_pairs_per_token
    sa, ca, sb, cb = l_start[li][keep], ca[keep], r_start[ri][keep], cb[keep]
    sizes = ca * cb
    total = int(sizes.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    which = np.repeat(np.arange(len(sizes)), sizes)
    offset = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ia = lr[sa[which] + offset // cb[which]]
    ib = rr[sb[which] + offset % cb[which]]
    n_right = max(len(right), 1)
    flat = np.unique(ia * n_right + ib)
    return flat // n_right, flat % n_right


def _flatten(rows: IdArray) -> tuple[IdArray, IdArray]:
    tokens = rows.ravel()
    row_of = np.repeat(np.arange(rows.shape[0], dtype=np.int64), rows.shape[1])
    order = np.argsort(tokens, kind="stable")
    return tokens[order], row_of[order]


def _runs(sorted_tokens: IdArray) -> tuple[IdArray, IdArray, IdArray]:
    if len(sorted_tokens) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    change = np.flatnonzero(np.diff(sorted_tokens)) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    counts = np.diff(np.concatenate((starts, [len(sorted_tokens)]))).astype(np.int64)
    return sorted_tokens[starts], starts, counts


def agreement_patterns(
    left: IdArray,
    right: IdArray,
    ia: IdArray,
    ib: IdArray,
    group_slices: Sequence[tuple[int, int]],
) -> IdArray:
    """Bit g of a pair's pattern is set when the pair shares a token of key group g."""
    patterns = np.zeros(len(ia), dtype=np.int64)
    for lo in range(0, len(ia), _PATTERN_CHUNK):
        a_rows = left[ia[lo : lo + _PATTERN_CHUNK]]
        b_rows = right[ib[lo : lo + _PATTERN_CHUNK]]
        chunk = np.zeros(len(a_rows), dtype=np.int64)
        for bit, (s, e) in enumerate(group_slices):
            a, b = a_rows[:, s:e], b_rows[:, s:e]
            agree = (a[:, :, None] == b[:, None, :]).any(axis=(1, 2))
            chunk |= agree.astype(np.int64) << bit
        patterns[lo : lo + _PATTERN_CHUNK] = chunk
    return patterns
