"""Block-maxima selection (evaluation/select.py) against a full sort: exact, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from cti_repro.evaluation.select import blocks_for, deep_blocks, relevant_in_top, topk_blocks


def _sorted(s: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Full order of every row: score descending, then tie rank ascending (np.lexsort: last key first)."""
    return np.stack([np.lexsort((key, -row)) for row in s])


@pytest.mark.parametrize("n,k,levels", [(500, 10, 3), (2000, 10, 50), (64, 10, 2), (300, 37, 1000)])
def test_topk_blocks_equals_a_full_sort_with_ties(n: int, k: int, levels: int) -> None:
    rng = np.random.default_rng(n + k)
    s = rng.integers(0, levels, size=(40, n)).astype(np.float64)  # few levels: ties everywhere
    s[0] = 0.0  # a row that is one big tie
    s[1, ::3] = -np.inf
    key = rng.permutation(n).astype(np.int64)
    want = _sorted(s, key)[:, :k]
    np.testing.assert_array_equal(topk_blocks(s, k, key, blocks_for(n, k)), want)
    np.testing.assert_array_equal(topk_blocks(s, k, None, blocks_for(n, k)), _sorted(s, np.arange(n))[:, :k])


def test_relevant_in_top_counts_the_exact_top_r() -> None:
    rng = np.random.default_rng(7)
    n = 900
    s = rng.integers(0, 4, size=(30, n)).astype(np.float64)
    key = rng.permutation(n).astype(np.int64)
    labels, q = rng.integers(0, 5, n), rng.integers(0, 5, 30)
    depth = np.maximum(1, (labels[None, :] == q[:, None]).sum(1))  # R of each row
    order = _sorted(s, key)
    want = np.array([(labels[order[i, : depth[i]]] == q[i]).sum() for i in range(30)])
    got = relevant_in_top(s, depth, key, deep_blocks(n, int(depth.max())), lambda r, c: labels[c] == q[r])
    np.testing.assert_array_equal(got, want)


def test_nan_is_refused() -> None:
    s = np.zeros((2, 100))
    s[1, 5] = np.nan
    with pytest.raises(ValueError):
        topk_blocks(s, 10, None, blocks_for(100, 10))


# ---- the compiled one-pass kernel (evaluation/select_jit.py), when numba is installed ----------
from cti_repro.evaluation import select_jit as jit  # noqa: E402
needs_numba = pytest.mark.skipif(not jit.available(), reason="numba not installed")


@needs_numba
@pytest.mark.parametrize("n,k,levels,dtype", [(500, 10, 3, np.float64), (2000, 10, 50, np.float32),
                                              (64, 10, 2, np.float64), (300, 37, 1000, np.float64), (12, 12, 4, np.float32)])
def test_jit_topk_equals_a_full_sort_with_ties(n: int, k: int, levels: int, dtype) -> None:
    rng = np.random.default_rng(n * k)
    s = rng.integers(0, levels, size=(40, n)).astype(dtype)
    s[0] = 0.0  # one big tie: the lowest tie ranks win
    s[1, ::3] = -np.inf
    s[2] = np.arange(n)  # ascending: every column enters the list, the worst case for insertion
    key = rng.permutation(n).astype(np.int64)
    np.testing.assert_array_equal(jit.topk_rows(s, k, key), _sorted(s, key)[:, :k])
    np.testing.assert_array_equal(jit.topk_rows(s, k, None), _sorted(s, np.arange(n))[:, :k])


@needs_numba
def test_jit_topk_refuses_nan_and_bad_depths() -> None:
    s = np.zeros((3, 50))
    s[2, 0] = np.nan  # first column: NaN before the list is full
    with pytest.raises(ValueError, match="NaN"):
        jit.topk_rows(s, 10, None)
    s[2, 0], s[1, 40] = 0.0, np.nan  # after it is full
    with pytest.raises(ValueError, match="NaN"):
        jit.topk_rows(s, 10, None)
    with pytest.raises(ValueError, match="k must be"):
        jit.topk_rows(s, 51, None)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_jit_topk_skipped_blocks_keep_ties_late_winners_and_nan(dtype) -> None:
    # Rows long enough that the kernel skips whole blocks once its list is full: a block is only
    # skipped when no score in it reaches the list's last entry, so a late tie with the last entry
    # (lower tie rank), a late winner and a late NaN must all still be seen.
    rng = np.random.default_rng(5)
    n, k = 3000, 16
    s = rng.random((6, n)).astype(dtype) * 0.5
    s[:, :k] = 0.9  # the list fills with ties at 0.9 first
    s[0, 2500] = 0.9  # a late tie with the last entry
    s[1, 1700], s[1, 2999] = 1.0, 0.95  # late winners, one in the ragged tail
    s[2, 1000:1064] = 0.9  # a whole block tying with the last entry
    key = rng.permutation(n).astype(np.int64)
    key[2500] = 0  # the late tie wins its tie
    for kk in (key, None):
        tie = np.arange(n) if kk is None else kk
        np.testing.assert_array_equal(jit.topk_rows(s, k, kk), _sorted(s, tie)[:, :k])
    s[3, 1234] = np.nan  # in a block of scores far below the full list's last entry
    with pytest.raises(ValueError, match="NaN"):
        jit.topk_rows(s, k, None)


@needs_numba
def test_evaluator_gives_the_same_numbers_with_and_without_the_kernel(monkeypatch) -> None:
    from cti_repro.evaluation.evaluate import evaluate_scores
    from cti_repro.study import AP_NORMS

    rng = np.random.default_rng(3)
    s = rng.integers(0, 30, size=(700, 2000)).astype(np.float64)  # ties
    q_lab, c_lab = rng.integers(0, 40, 700), rng.integers(0, 40, 2000)  # R ~ 50: deep rows
    c_lab[:40] = np.arange(40)  # every query has a relevant candidate; some R > 10
    c_lab[40:440] = 0  # one label with R > MAX_DEPTH: those rows take the numpy path
    tie = rng.permutation(2000)
    calls = []
    real = jit.topk_rows
    monkeypatch.setattr(jit, "topk_rows", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(jit, "MIN_SCORES", 0)
    idx_j, m_j = evaluate_scores(s, q_lab, c_lab, tie_key=tie, ap_norms=AP_NORMS, chunk_size=256)
    assert calls  # the kernel ran
    monkeypatch.setattr(jit, "MIN_SCORES", 1 << 62)
    idx_n, m_n = evaluate_scores(s, q_lab, c_lab, tie_key=tie, ap_norms=AP_NORMS, chunk_size=256)
    np.testing.assert_array_equal(idx_j.numpy(), idx_n.numpy())
    for norm in AP_NORMS:
        for metric, v in m_n[norm].items():
            np.testing.assert_array_equal(m_j[norm][metric], v)


@needs_numba
def test_jit_relevant_in_top_counts_the_exact_top_r() -> None:
    rng = np.random.default_rng(11)
    n = 900
    s = rng.integers(0, 4, size=(30, n)).astype(np.float64)  # ties at every boundary
    key = rng.permutation(n).astype(np.int64)
    labels, q = rng.integers(0, 5, n), rng.integers(0, 5, 30)
    depth = np.minimum(jit.MAX_DEPTH, np.maximum(1, (labels[None, :] == q[:, None]).sum(1)))
    depth[:3] = [1, 2, jit.MAX_DEPTH]
    order = _sorted(s, key)
    want = np.array([(labels[order[i, : depth[i]]] == q[i]).sum() for i in range(30)])
    np.testing.assert_array_equal(jit.relevant_in_top(s, depth, key, labels, q), want)
    np.testing.assert_array_equal(
        jit.relevant_in_top(s, depth, key, labels, q),
        relevant_in_top(s, depth, key, deep_blocks(n, int(depth.max())), lambda r, c: labels[c] == q[r]))
    with pytest.raises(ValueError, match="depths"):
        jit.relevant_in_top(s, np.full(30, n + 1), key, labels, q)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_jit_kth_largest_equals_np_partition_with_ties(dtype) -> None:
    rng = np.random.default_rng(12)
    s = rng.integers(0, 20, size=(50, 700)).astype(dtype)  # ties at every depth
    s[25:] = np.argsort(rng.random((25, 700)), axis=1)  # and rows of distinct scores
    depth = rng.integers(1, jit.MAX_DEPTH + 1, 50)
    depth[:2] = [1, jit.MAX_DEPTH]
    want = np.array([np.partition(row, len(row) - d)[len(row) - d] for row, d in zip(s, depth)])
    np.testing.assert_array_equal(jit.kth_largest(s, depth), want)
    with pytest.raises(ValueError, match="depths"):
        jit.kth_largest(s, np.full(50, jit.MAX_DEPTH + 1))


@needs_numba
def test_r_precision_counts_equal_with_and_without_the_kernel(monkeypatch) -> None:
    from cti_repro.evaluation.evaluate import evaluate_embeddings

    rng = np.random.default_rng(13)
    c = rng.normal(size=(1200, 12))
    c[600:] = c[:600]  # duplicates: ties at the R-th score
    q = rng.normal(size=(90, 12))
    labels = rng.integers(0, 6, 1200)  # R ~ 200 (kernel) ...
    labels[:400] = 6  # ... and R = 400 + (np.partition) for label 6
    q_lab = rng.integers(0, 7, 90)
    want = evaluate_embeddings(q, c, q_lab, labels, prefilter=True, chunk_size=32)
    monkeypatch.setattr(jit, "available", lambda: False)
    got = evaluate_embeddings(q, c, q_lab, labels, prefilter=True, chunk_size=32)
    np.testing.assert_array_equal(want[1]["hits"]["R-precision"], got[1]["hits"]["R-precision"])
