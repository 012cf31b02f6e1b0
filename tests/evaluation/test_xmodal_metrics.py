"""Text <-> image metrics against hand-computed values."""

import numpy as np
import pytest

from cti_repro.evaluation import xmodal_metrics as xm


def test_true_match_ranks_hand_computed_with_ties_by_index():
    # 3 products, 2-d. Query i's match is candidate i.
    q = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    c = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    # cosines: q0 -> [0, 1, .707]: own 0 -> rank 3; q1 -> same row: own 1 -> rank 1;
    # q2 -> [1, 0, .707]: own .707 -> rank 2
    assert xm.true_match_ranks(q, c).tolist() == [3, 1, 2]
    # ties: identical candidates; the lower index wins
    same = np.ones((3, 2))
    assert xm.true_match_ranks(same, same).tolist() == [1, 2, 3]


def test_chunking_does_not_change_ranks():
    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    full = xm.true_match_ranks(q, c, chunk_size=50)
    assert (xm.true_match_ranks(q, c, chunk_size=7) == full).all()
    s = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (c / np.linalg.norm(c, axis=1, keepdims=True)).T
    brute = [1 + sum(s[i, j] > s[i, i] for j in range(50) if j != i) for i in range(50)]
    assert full.tolist() == brute


def test_metric_formulas():
    r = [1, 2, 3, 10, 40]
    n = 40
    assert xm.median_rank_percent(r, n) == pytest.approx(100 * 3 / 40)
    assert xm.recall_at_k(r, 1) == pytest.approx(20.0)
    assert xm.recall_at_k(r, 5) == pytest.approx(60.0)
    assert xm.recall_at_k(r, 10) == pytest.approx(80.0)
    assert xm.percent_cutoff(40, 5) == 2 and xm.percent_cutoff(40, 1) == 1 and xm.percent_cutoff(24, 10) == 3
    assert xm.recall_at_percent(r, n, 5) == pytest.approx(40.0)   # ranks <= 2
    assert xm.recall_at_percent(r, n, 25) == pytest.approx(80.0)  # ranks <= 10
    assert xm.mean_reciprocal_rank(r) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 10 + 1 / 40) / 5)
    assert xm.accuracy(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), [1, 1, 1]) == pytest.approx(200 / 3)
    with pytest.raises(ValueError):
        xm.recall_at_k([0, 1], 1)


def test_means_keys_and_groups():
    ranks = {"t2i": np.array([1, 4]), "i2t": np.array([2, 2])}
    m = xm.xmodal_means(ranks, 4)
    for k in ("MedR%_t2i", "MedR%_i2t", "R@1_t2i", "R@5_t2i", "R@10_t2i", "R@1_i2t", "R@5_i2t", "R@10_i2t",
              "R@5%_t2i", "R@5%_i2t", "MRR_t2i"):
        assert k in m
    assert m["MedR%_t2i"] == pytest.approx(100 * 2.5 / 4) and m["R@1_i2t"] == 0.0 and m["MRR_i2t"] == 0.5
    g = xm.median_rank_by_group([1, 4, 2], ["a", "b", "a"], 4)
    assert g == {"a": {"queries": 2, "MedR%": pytest.approx(37.5)}, "b": {"queries": 1, "MedR%": 100.0}}
    x, y = xm.recall_curve([1, 2, 4, 4], 4, points=5)  # cut-offs 0, 1, 2, 3, 4 ranks
    assert y.tolist() == [0.0, 25.0, 50.0, 50.0, 100.0]


def test_ties_follow_the_ranking_modules_tie_key_rule():
    """Ranks are positions in the full ranking of cti_repro.evaluation.ranking.rank with the same tie key."""
    from cti_repro.evaluation.ranking import rank
    from cti_repro.run.row import tie_order

    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 3))
    q = base[rng.integers(0, 4, 30)]  # many exact duplicates: ties everywhere
    c = base[rng.integers(0, 4, 30)]
    key = tie_order(np.array([f"p{i:03d}" for i in range(30)]), "random", seed=5)
    got = xm.true_match_ranks(q, c, tie_key=key)
    idx, _ = rank(q, c, 30, tie_key=key)
    want = [int(np.nonzero(idx[i].numpy() == i)[0][0]) + 1 for i in range(30)]
    assert got.tolist() == want
    same = np.ones((6, 2))  # all tied: each rank is 1 + the number of keys below the product's own
    key6 = np.array([3, 0, 5, 1, 4, 2])
    assert xm.true_match_ranks(same, same, tie_key=key6).tolist() == (key6 + 1).tolist()


def test_recall_curve_uses_the_tables_rounding():
    ranks, n = [1, 2, 3, 4, 7, 9, 30], 30  # 5% of 30 = 1.5 candidates: the table takes the top 2
    x, y = xm.recall_curve(ranks, n, points=21)
    for p in (5, 10, 15, 50):
        assert y[list(x).index(p)] == pytest.approx(xm.recall_at_percent(ranks, n, p))
    assert y[0] == 0 and y[-1] == 100
