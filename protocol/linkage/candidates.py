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
_PATTERN_CHUNK = 50_000
BUCKET_TOKENS = 2_000_000  # tokens joined at once


def candidate_pairs(
    left: IdArray,
    right: IdArray,
    *,
    max_pairs_per_token: int = MAX_PAIRS_PER_TOKEN,
    upper: bool = False,
    bucket_tokens: int = BUCKET_TOKENS,
) -> tuple[IdArray, IdArray]:
    """Row indices (i, j) of every pair sharing at least one proposing token, sorted.

    With `upper` (a cohort against itself) only pairs with i < j. Tokens are split into
    buckets by a hash of their id and each bucket joined on its own, so the working
    memory is that of one bucket (a million rows carry tens of millions of tokens).
    """
    n_right = max(len(right), 1)
    buckets = max(1, (left.size + right.size) // bucket_tokens)
    l_bucket, r_bucket = _bucket_of(left, buckets), _bucket_of(right, buckets)
    found: list[IdArray] = []
    for b in range(buckets):
        lt, lr = _bucket_tokens(left, l_bucket, b)
        rt, rr = _bucket_tokens(right, r_bucket, b)
        codes = _join(lt, lr, rt, rr, max_pairs_per_token, upper=upper)
        found.append(codes[0] * n_right + codes[1])
    flat = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    return flat // n_right, flat % n_right


def _bucket_of(rows: IdArray, buckets: int) -> npt.NDArray[np.uint16]:
    mixed = rows.ravel().view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps: a hash
    return (mixed >> np.uint64(48)).astype(np.uint16) % np.uint16(buckets)


def _bucket_tokens(
    rows: IdArray, bucket: npt.NDArray[np.uint16], b: int
) -> tuple[IdArray, IdArray]:
    """The bucket's tokens sorted, with the row each came from."""
    where = np.flatnonzero(bucket == b)
    tokens = rows.ravel()[where]
    order = np.argsort(tokens, kind="stable")
    return tokens[order], (where[order] // max(rows.shape[1], 1)).astype(np.int64)


def _join(
    lt: IdArray, lr: IdArray, rt: IdArray, rr: IdArray, max_pairs: int, *, upper: bool
) -> tuple[IdArray, IdArray]:
    l_tokens, l_start, l_count = _runs(lt)
    r_tokens, r_start, r_count = _runs(rt)
    _, li, ri = np.intersect1d(l_tokens, r_tokens, assume_unique=True, return_indices=True)
    ca, cb = l_count[li], r_count[ri]
    keep = ca * cb <= max_pairs
    sa, ca, sb, cb = l_start[li][keep], ca[keep], r_start[ri][keep], cb[keep]
    sizes = ca * cb
    total = int(sizes.sum())
    which = np.repeat(np.arange(len(sizes)), sizes)
    offset = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ia = lr[sa[which] + offset // cb[which]]
    ib = rr[sb[which] + offset % cb[which]]
    if upper:
        keep = ia < ib
        ia, ib = ia[keep], ib[keep]
    return ia, ib


def _runs(sorted_tokens: IdArray) -> tuple[IdArray, IdArray, IdArray]:
    if len(sorted_tokens) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    change = np.flatnonzero(np.diff(sorted_tokens)) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    counts = np.diff(np.concatenate((starts, [len(sorted_tokens)]))).astype(np.int64)
    return sorted_tokens[starts], starts, counts


Paired = Sequence[tuple[int, tuple[int, int], tuple[int, int]]]


def agreement_patterns(
    left: IdArray,
    right: IdArray,
    ia: IdArray,
    ib: IdArray,
    group_slices: Sequence[tuple[int, int]],
    paired: Paired = (),
) -> IdArray:
    """Bit g of a pair's pattern is set when the pair shares a token of key group g.

    `paired` lists (bit, slice, partner's slice): that bit is also set when one side's
    tokens of the group meet the other side's tokens of its partner.
    """
    patterns = np.zeros(len(ia), dtype=np.int64)
    for lo in range(0, len(ia), _PATTERN_CHUNK):
        a_rows = left[ia[lo : lo + _PATTERN_CHUNK]]
        b_rows = right[ib[lo : lo + _PATTERN_CHUNK]]
        chunk = np.zeros(len(a_rows), dtype=np.int64)
        for bit, (s, e) in enumerate(group_slices):
            chunk |= _meet(a_rows[:, s:e], b_rows[:, s:e]).astype(np.int64) << bit
        for bit, (s, e), (ps, pe) in paired:
            across = _meet(a_rows[:, s:e], b_rows[:, ps:pe])
            across |= _meet(a_rows[:, ps:pe], b_rows[:, s:e])
            chunk |= across.astype(np.int64) << bit
        patterns[lo : lo + _PATTERN_CHUNK] = chunk
    return patterns


def _meet(a: IdArray, b: IdArray) -> npt.NDArray[np.bool_]:
    """Rows whose token sets intersect."""
    met: npt.NDArray[np.bool_] = (a[:, :, None] == b[:, None, :]).any(axis=(1, 2))
    return met


def token_counts(*cohorts: IdArray) -> tuple[IdArray, IdArray]:
    """Every token id over the cohorts, sorted, and the number of rows holding each.

    A row holds a token at most once, so a token's count is its number of rows. Unused
    slots hold fresh random ids and count 1.
    """
    flat = np.concatenate([c.ravel() for c in cohorts]) if cohorts else np.zeros(0, np.int64)
    tokens, counts = np.unique(flat, return_counts=True)
    return tokens, counts.astype(np.int64)


def rarest_shared(
    left: IdArray,
    right: IdArray,
    ia: IdArray,
    ib: IdArray,
    group: tuple[int, int],
    partner: tuple[int, int] | None,
    vocabulary: tuple[IdArray, IdArray],
) -> IdArray:
    """For each pair, how many rows hold the rarest token the pair shares in one key group.

    With `partner` (a paired group) the tokens of the group on one side also meet the
    partner's on the other, as in `agreement_patterns`. Pairs sharing no token get 0.
    """
    tokens, counts = vocabulary
    (s, e) = group
    meets = [((s, e), (s, e))]
    if partner is not None:
        meets += [((s, e), partner), (partner, (s, e))]
    out = np.zeros(len(ia), dtype=np.int64)
    for lo in range(0, len(ia), _PATTERN_CHUNK):
        a_rows = left[ia[lo : lo + _PATTERN_CHUNK]]
        b_rows = right[ib[lo : lo + _PATTERN_CHUNK]]
        best = np.full(len(a_rows), np.iinfo(np.int64).max, dtype=np.int64)
        for (as_, ae), (bs, be) in meets:
            a, b = a_rows[:, as_:ae], b_rows[:, bs:be]
            shared = (a[:, :, None] == b[:, None, :]).any(axis=2)
            if not shared.any():
                continue
            count = counts[np.searchsorted(tokens, a)]
            best = np.minimum(best, np.where(shared, count, best[:, None]).min(axis=1))
        best[best == np.iinfo(np.int64).max] = 0
        out[lo : lo + _PATTERN_CHUNK] = best
    return out
