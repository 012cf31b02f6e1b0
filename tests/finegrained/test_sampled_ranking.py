"""The 1 + K sampled-negatives protocol (cti_repro.evaluation.sampled_ranking) against a direct computation."""

import numpy as np
import pytest

from cti_repro.evaluation.sampled_ranking import (
    query_subsample, ranks_among, ranks_from_matrix, sample_negatives, sampled_ranks_embeddings,
)
from cti_repro.evaluation.xmodal_metrics import true_match_ranks


def test_negatives_are_distinct_exclude_the_match_and_are_fixed_by_the_seed():
    own = np.arange(50)
    neg = sample_negatives(50, own, 10, seed=3)
    assert neg.shape == (50, 10)
    assert all(len(set(r)) == 10 and i not in r for i, r in zip(own, neg.tolist()))
    assert (neg >= 0).all() and (neg < 50).all()
    assert np.array_equal(neg, sample_negatives(50, own, 10, seed=3))
    assert not np.array_equal(neg, sample_negatives(50, own, 10, seed=4))
    # fewer candidates than asked: every other candidate, once
    assert np.array_equal(sample_negatives(5, np.array([2]), 100, 0), [[0, 1, 3, 4]])


def _direct(scores_q: np.ndarray, own: int, cands: list[int]) -> int:
    """Rank of ``own`` among ``cands`` sorted by score descending, ties by candidate index ascending."""
    order = sorted(cands, key=lambda j: (-scores_q[j], j))
    return order.index(own) + 1


def test_sampled_ranks_equal_a_direct_sort_of_the_1_plus_k_candidates():
    rng = np.random.default_rng(0)
    n, d, k = 60, 8, 20
    q, c = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    c[7] = c[3]  # a real tie for the queries that see both
    rows = query_subsample(n, 25, seed=1)
    neg = sample_negatives(n, rows, k, seed=2)
    got = sampled_ranks_embeddings(q, c, rows, neg)
    qn, cn = q / np.linalg.norm(q, axis=1, keepdims=True), c / np.linalg.norm(c, axis=1, keepdims=True)
    s = qn @ cn.T
    want = [_direct(s[i], i, [i, *neg[r]]) for r, i in enumerate(rows)]
    assert got.tolist() == want
    assert got.min() >= 1 and got.max() <= k + 1


def test_ties_break_by_candidate_index_as_in_the_full_ranking():
    # all scores equal: the match ranks behind exactly the negatives with a smaller index
    pos, neg = np.zeros(2), np.zeros((2, 3))
    assert ranks_among(pos, neg, np.array([5, 0]), np.array([[1, 6, 9], [2, 3, 4]])).tolist() == [2, 1]


def test_full_matrix_ranks_agree_with_true_match_ranks_both_directions():
    rng = np.random.default_rng(1)
    t, i = rng.normal(size=(30, 6)), rng.normal(size=(30, 6))
    tn, inn = t / np.linalg.norm(t, axis=1, keepdims=True), i / np.linalg.norm(i, axis=1, keepdims=True)
    s = tn @ inn.T
    assert ranks_from_matrix(s).tolist() == true_match_ranks(t, i).tolist()
    assert ranks_from_matrix(s.T).tolist() == true_match_ranks(i, t).tolist()


def test_with_every_other_candidate_the_sampled_protocol_is_the_full_ranking():
    rng = np.random.default_rng(2)
    s = rng.normal(size=(12, 12))
    rows = np.arange(12)
    neg = sample_negatives(12, rows, 100, 0)  # 11 = all others
    sampled = ranks_among(s[rows, rows], np.take_along_axis(s, neg, 1), rows, neg)
    assert sampled.tolist() == ranks_from_matrix(s).tolist()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2 candidates"):
        sample_negatives(1, np.array([0]), 5, 0)
    with pytest.raises(ValueError, match="indices"):
        sample_negatives(5, np.array([5]), 2, 0)
    with pytest.raises(ValueError, match="square"):
        ranks_from_matrix(np.zeros((2, 3)))
