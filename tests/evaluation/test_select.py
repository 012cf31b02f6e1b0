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
