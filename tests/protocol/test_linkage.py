"""Linking at the joiner: candidates, EM, and order-independent one-to-one entities."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.linkage.candidates import (
    agreement_patterns,
    candidate_pairs,
    rarest_shared,
    token_counts,
)
from protocol.linkage.fellegi_sunter import Comparison, FSModel, fit_em, level_frequencies
from protocol.linkage.keys import load_profile
from protocol.linkage.link import link_cohorts, score_pair

SLICES = [(0, 1), (1, 3), (3, 4)]


def rows_strategy(max_rows: int = 12) -> st.SearchStrategy[np.ndarray]:
    return (
        st.integers(1, max_rows)
        .flatmap(
            lambda n: st.lists(
                st.lists(st.integers(0, 15), min_size=4, max_size=4), min_size=n, max_size=n
            )
        )
        .map(lambda rows: np.array(rows, dtype=np.int64))
    )


@given(rows_strategy(), rows_strategy())
def test_candidates_are_exactly_the_pairs_sharing_a_token(
    left: np.ndarray, right: np.ndarray
) -> None:
    ia, ib = candidate_pairs(left, right, max_pairs_per_token=10**9)
    got = set(zip(ia.tolist(), ib.tolist(), strict=True))
    want = {
        (i, j)
        for i in range(len(left))
        for j in range(len(right))
        if set(left[i].tolist()) & set(right[j].tolist())
    }
    assert got == want


@given(rows_strategy(), rows_strategy(), st.integers(1, 40))
def test_bucketed_join_finds_the_same_candidates(
    left: np.ndarray, right: np.ndarray, bucket_tokens: int
) -> None:
    whole = candidate_pairs(left, right, max_pairs_per_token=4, bucket_tokens=10**9)
    split = candidate_pairs(left, right, max_pairs_per_token=4, bucket_tokens=bucket_tokens)
    assert [a.tolist() for a in split] == [a.tolist() for a in whole]
    ia, ib = candidate_pairs(left, left, bucket_tokens=bucket_tokens, upper=True)
    full_a, full_b = candidate_pairs(left, left, bucket_tokens=10**9)
    upper = full_a < full_b
    assert (ia.tolist(), ib.tolist()) == (full_a[upper].tolist(), full_b[upper].tolist())


@given(rows_strategy(), rows_strategy())
def test_patterns_mark_groups_whose_token_sets_intersect(
    left: np.ndarray, right: np.ndarray
) -> None:
    ia, ib = candidate_pairs(left, right, max_pairs_per_token=10**9)
    patterns = agreement_patterns(left, right, ia, ib, SLICES)
    for i, j, p in zip(ia.tolist(), ib.tolist(), patterns.tolist(), strict=True):
        for bit, (s, e) in enumerate(SLICES):
            shares = bool(set(left[i, s:e].tolist()) & set(right[j, s:e].tolist()))
            assert bool(p >> bit & 1) == shares


def test_frequent_tokens_propose_no_candidates_but_still_count_as_agreement() -> None:
    left = np.array([[1, 10, 11, 12], [1, 20, 21, 22]], dtype=np.int64)
    right = np.array([[1, 10, 31, 32], [1, 40, 41, 42]], dtype=np.int64)
    ia, ib = candidate_pairs(left, right, max_pairs_per_token=2)
    assert list(zip(ia.tolist(), ib.tolist(), strict=True)) == [(0, 0)]
    assert agreement_patterns(left, right, ia, ib, SLICES).tolist() == [0b011]


BINARY = Comparison(("a", "b", "c"), ((0,), (1,), (2,)))


def test_comparison_levels_take_the_best_agreeing_group() -> None:
    comparison = Comparison(("name", "zip"), ((0, 1, 2), (3,)))
    patterns = np.array([0b0000, 0b0110, 0b0100, 0b1001], dtype=np.int64)
    assert comparison.levels(patterns).tolist() == [[3, 1], [1, 1], [2, 1], [0, 0]]
    assert comparison.sizes == (4, 2)


def test_em_separates_matches_from_non_matches() -> None:
    # 100 true matches agree on all three groups; non-matches mostly agree on none.
    patterns = np.array([0, 0b001, 0b010, 0b100, 0b111, 0b011], dtype=np.int64)
    counts = np.array([1_000_000, 40, 30, 50, 100, 5], dtype=np.int64)
    levels = BINARY.levels(patterns)
    for u in (None, level_frequencies(levels, counts, BINARY.sizes)):
        model = fit_em(levels, counts, sizes=BINARY.sizes, u=u)
        assert all(m[0] > u_[0] for m, u_ in zip(model.m, model.u, strict=True))
        scores = model.log_odds(levels)
        assert scores[4] > 0 > scores[0]
        assert scores[4] > scores[5] > scores[1]


def entity_sets(
    entities: list[dict[str, int]], relabel: dict[str, list[int]] | None = None
) -> set[frozenset[tuple[str, int]]]:
    out = set()
    for e in entities:
        out.add(frozenset((c, relabel[c][r] if relabel else r) for c, r in e.items()))
    return out


def cohorts_with_structure(seed: int, n: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 1 << 40, size=(n, 4))
    out = {}
    for name in ("a", "b", "c"):
        rows = base.copy()
        noise = rng.random(rows.shape) < 0.3
        rows[noise] = rng.integers(0, 1 << 40, size=int(noise.sum()))
        keep = rng.random(n) < 0.7
        out[name] = rows[keep]
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.randoms(use_true_random=False))
def test_entities_do_not_depend_on_row_order(seed: int, rnd: object) -> None:
    cohorts = cohorts_with_structure(seed)
    perms = {c: list(range(len(v))) for c, v in cohorts.items()}
    for p in perms.values():
        rnd.shuffle(p)  # type: ignore[attr-defined]
    shuffled = {c: v[perms[c]] for c, v in cohorts.items()}
    plain = link_cohorts(cohorts, SLICES, BINARY)
    moved = link_cohorts(shuffled, SLICES, BINARY)
    assert entity_sets(moved.entities, perms) == entity_sets(plain.entities)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_every_row_is_in_exactly_one_entity_with_one_row_per_cohort(seed: int) -> None:
    cohorts = cohorts_with_structure(seed)
    result = link_cohorts(cohorts, SLICES, BINARY)
    seen = [(c, r) for e in result.entities for c, r in e.items()]
    assert sorted(seen) == sorted((c, r) for c, v in cohorts.items() for r in range(len(v)))


def test_a_tie_is_not_broken_by_guessing() -> None:
    # Row 0 of `a` is equally good for rows 0 and 1 of `b`: neither link is made.
    a = np.array([[1, 2, 3, 4], [50, 51, 52, 53]], dtype=np.int64)
    b = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [50, 51, 52, 53]], dtype=np.int64)
    result = link_cohorts({"a": a, "b": b}, SLICES, BINARY)
    assert result.links("a", "b") == [(1, 2)]
    assert result.ambiguous_rows == 3


def test_an_empty_cohort_links_nothing_and_keeps_the_other_rows() -> None:
    a = np.zeros((0, 4), dtype=np.int64)
    b = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.int64)
    result = link_cohorts({"a": a, "b": b}, SLICES, BINARY)
    assert sorted(map(str, result.entities)) == ["{'b': 0}", "{'b': 1}"]
    one = np.array([[1, 2, 3, 4]], dtype=np.int64)
    assert link_cohorts({"a": one, "b": b}, SLICES, BINARY).links("a", "b") == [(0, 0)]


def test_twins_never_link_without_given_name_or_ssn_evidence() -> None:
    profile = load_profile("standard")
    names = [g.name for g in profile.groups]
    twin_like = 1 << names.index("last_dob_place")  # surname, DOB and ZIP agree, nothing else
    with_given = twin_like | (1 << names.index("first_sound_dob"))
    with_ssn = twin_like | (1 << names.index("ssn"))
    allowed = profile.comparison.may_link(np.array([twin_like, with_given, with_ssn]))
    assert allowed.tolist() == [False, True, True]


def test_a_first_name_missing_on_one_side_weighs_nothing_against_the_pair() -> None:
    # Agreeing on the group only records without a first name make shows a first name is
    # missing on one side: every name-with-DOB group reads it, so that feature's "none"
    # becomes the null level, which adds nothing; without that proof "none" still counts.
    profile = load_profile("standard")
    comparison = profile.comparison
    names = [g.name for g in profile.groups]
    feature = comparison.names.index("name_dob")
    none = len(comparison.bits[feature])
    no_first = 1 << names.index("no_first_dob_place")
    with_first = 1 << names.index("last_dob_place")
    levels = comparison.levels(np.array([no_first, with_first], dtype=np.int64))
    assert levels[:, feature].tolist() == [none + 1, none]
    rng = np.random.default_rng(3)
    m, u = (tuple(tuple(v / v.sum()) for v in map(rng.random, comparison.sizes)) for _ in "mu")
    model = FSModel(prior=0.01, m=m, u=u, iterations=0)

    def weight(f: int, level: int) -> float:
        return float(np.log(m[f][level]) - np.log(u[f][level]))

    prior = np.log(0.01) - np.log(0.99)
    others = [f for f in range(len(comparison.bits)) if f != feature]
    scores = model.log_odds(levels)
    assert scores[0] == pytest.approx(prior + sum(weight(f, levels[0, f]) for f in others))
    assert scores[1] == pytest.approx(
        prior + sum(weight(f, levels[1, f]) for f in others) + weight(feature, none)
    )


def test_em_leaves_null_levels_out_of_that_features_estimates() -> None:
    # The rows null on feature 1 add to feature 0's counts but nothing to feature 1's.
    levels = np.array([[0, 0], [1, 1], [1, 0], [0, 1]], dtype=np.int64)
    counts = np.array([50, 100_000, 30, 20], dtype=np.int64)
    u = [np.array([0.001, 0.999]), np.array([0.002, 0.998])]
    plain = fit_em(levels, counts, sizes=(2, 2), u=u)
    with_nulls = fit_em(
        np.vstack([levels, [[0, 2], [1, 2]]]), np.append(counts, [40, 5_000]), sizes=(2, 2), u=u
    )
    assert with_nulls.m[0][0] > plain.m[0][0]
    # Feature 1's m is the posterior-weighted share among rows compared on it only.
    posterior = 1 / (
        1
        + np.exp(
            np.log1p(-with_nulls.prior)
            - np.log(with_nulls.prior)
            + sum(
                np.log(np.asarray(u[f])[levels[:, f]])
                - np.log(np.asarray(with_nulls.m[f])[levels[:, f]])
                for f in (0, 1)
            )
        )
    )
    matched = np.bincount(levels[:, 1], weights=posterior * counts, minlength=2) + 0.5
    assert with_nulls.m[1] == pytest.approx(tuple(matched / matched.sum()), rel=1e-6)


@given(rows_strategy(), rows_strategy(), st.booleans())
def test_rarest_shared_token_is_the_least_held_token_the_pair_shares(
    left: np.ndarray, right: np.ndarray, with_partner: bool
) -> None:
    ia, ib = candidate_pairs(left, right, max_pairs_per_token=10**9)
    vocabulary = token_counts(left, right)
    group, partner = (0, 2), ((2, 4) if with_partner else None)
    got = rarest_shared(left, right, ia, ib, group, partner, vocabulary)
    rows_holding = dict(zip(*(v.tolist() for v in vocabulary), strict=True))
    for i, j, c in zip(ia.tolist(), ib.tolist(), got.tolist(), strict=True):
        a, b = left[i].tolist(), right[j].tolist()
        shared = set(a[0:2]) & set(b[0:2])
        if partner:
            shared |= (set(a[0:2]) & set(b[2:4])) | (set(a[2:4]) & set(b[0:2]))
        # A row holding a token in two slots counts once toward that token's rows.
        want = min((rows_holding[t] for t in shared), default=0)
        assert c == want


def test_a_pair_agreeing_through_a_rare_token_scores_above_one_through_a_common_token() -> None:
    # Token 7 is held by three rows in each cohort (nine cross pairs, six within), token
    # 8 by one row in each; both pairs agree on group a only. Non-matches within the
    # cohorts agree on group a through token 7, so C = 6 rows: the rare pair gains
    # log(6 / 2) against the level's weight and the common pairs log(6 / 6) = 0.
    rng = np.random.default_rng(5)

    def rows(first_tokens: list[int]) -> np.ndarray:
        out = rng.integers(1 << 20, 1 << 40, size=(len(first_tokens), 4))
        out[:, 0] = first_tokens
        return out

    left, right = rows([7, 7, 7, 8, 9]), rows([7, 7, 7, 8, 10])
    scored = score_pair(left, right, SLICES, BINARY)
    score = {
        (i, j): s
        for i, j, s in zip(
            scored.ia.tolist(), scored.ib.tolist(), scored.score.tolist(), strict=True
        )
    }
    assert score[(3, 3)] - score[(0, 0)] == pytest.approx(np.log(3))
    assert len({score[(i, j)] for i in range(3) for j in range(3)}) == 1
