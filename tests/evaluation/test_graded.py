"""nDCG@10 and TreeDist@10 against hand-computed values."""

import math

import numpy as np
import pytest

from cti_repro.evaluation.graded import gains, graded_metrics, ideal_dcg


def test_gains():
    assert gains(np.array([0, 1, 2, -1])).tolist() == [1.0, 0.5, 0.25, 0.0]


def test_ndcg_and_tree_distance_by_hand():
    # ranks: one level off, exact, off-path; 1 exact and 1 one-level-off candidate exist
    m = graded_metrics(np.array([[1, 0, -1]]), np.array([[1, 1]]), off_path=4, k=3)
    dcg = 0.5 / math.log2(2) + 1 / math.log2(3)
    idcg = 1 / math.log2(2) + 0.5 / math.log2(3)
    assert m["nDCG@3"][0] == pytest.approx(100 * dcg / idcg)
    assert m["TreeDist@3"][0] == pytest.approx((1 + 0 + 4) / 3)


def test_perfect_and_worthless_rankings():
    counts = np.array([[2, 3, 0], [2, 0, 0]])
    m = graded_metrics(np.array([[0, 0, 1], [-1, -1, -1]]), counts, off_path=5, k=3)
    assert m["nDCG@3"].tolist() == pytest.approx([100.0, 0.0])
    assert m["TreeDist@3"].tolist() == pytest.approx([1 / 3, 5.0])


def test_exact_only_ndcg_matches_binary_ndcg():
    # with no near misses, graded nDCG is the usual binary nDCG
    m = graded_metrics(np.array([[-1, 0, -1, 0]]), np.array([[3]]), off_path=2, k=4)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["nDCG@4"][0] == pytest.approx(100 * dcg / idcg)


def test_ideal_truncates_at_k():
    assert ideal_dcg(np.array([[0, 5]]), k=2)[0] == pytest.approx(0.5 + 0.5 / math.log2(3))


def test_shape_errors():
    with pytest.raises(ValueError, match="counts"):
        graded_metrics(np.zeros((2, 3)), np.zeros((3, 1)), off_path=1)
