"""Graded relevance by tree distance: nDCG@10 and the mean tree distance of the top 10.

Exact-match relevance (the paper's six metrics) scores a "Drip Coffee Machines" product retrieved
for "Coffee Machines" as plain wrong. These two metrics grade it by how far it is in the tree.
Inputs are arrays only (built in :mod:`cti_repro.data.tree`):

- ``topk_dist`` [Q, k]: on-path distance ``d`` of the candidate at each rank, ``-1`` if off-path
  (the query is not on the candidate's category path: another tree or a sibling branch);
- ``counts`` [Q, D + 1]: how many candidates of each query lie at on-path distance 0..D.

Definitions (k = 10, ranks r = 1..k)::

    gain(d)      = 2^-d  for an on-path candidate (exact match: 1, one level off: 1/2, ...), 0 off-path
    DCG@k        = sum_r gain(d_r) / log2(r + 1)
    IDCG@k       = DCG@k of the ideal ranking: all candidates sorted by gain, i.e. ``counts[0]``
                   exact matches first, then ``counts[1]`` at distance 1, ...
    nDCG@k       = 100 * DCG@k / IDCG@k            (percent, like the paper's metrics; 0 if IDCG = 0)
    TreeDist@k   = (1/k) sum_r dist_r,  dist_r = d_r on-path, ``off_path`` for an off-path candidate

``off_path`` is the caller's penalty for an off-path result; :func:`cti_repro.run.row.run_row`
uses the longest category path in the catalogue, one more than any on-path distance can be, so
an off-path result always counts worse than the worst on-path one. Ranks beyond the candidate
count (fewer than k candidates) are left out of both sums and of TreeDist's mean.
"""

from __future__ import annotations

import numpy as np

from cti_repro.study import GRADED_METRICS


def gains(dist: np.ndarray) -> np.ndarray:
    """``2^-d`` for ``d >= 0``, 0 for ``d < 0`` (off-path)."""
    dist = np.asarray(dist)
    return np.where(dist >= 0, np.exp2(-np.maximum(dist, 0).astype(float)), 0.0)


def ideal_dcg(counts: np.ndarray, k: int = 10) -> np.ndarray:
    """IDCG@k per query from the per-distance candidate counts ``[Q, D + 1]``."""
    counts = np.asarray(counts, dtype=np.int64)
    q, n_d = counts.shape
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    out = np.zeros(q)
    for i in range(q):
        # the ideal list: counts[i, 0] gains of 1, then counts[i, 1] of 1/2, ... truncated at k
        ideal = np.repeat(np.exp2(-np.arange(n_d, dtype=float)), np.minimum(counts[i], k))[:k]
        out[i] = float(ideal @ disc[: len(ideal)])
    return out


def graded_metrics(topk_dist: np.ndarray, counts: np.ndarray, off_path: float, k: int = 10) -> dict[str, np.ndarray]:
    """Per-query ``nDCG@k`` (percent) and ``TreeDist@k`` (tree edges).

    Args:
        topk_dist: on-path distance of the candidate at each rank, ``[Q, >= k]`` (-1 off-path);
            only the first k columns are used.
        counts: candidates at each on-path distance per query, ``[Q, D + 1]``.
        off_path: the distance an off-path result counts as in ``TreeDist@k``.
        k: the cut-off.

    Returns:
        ``{"nDCG@k": [Q], "TreeDist@k": [Q]}`` as float arrays.

    Example:
        >>> m = graded_metrics(np.array([[1, 0, -1]]), np.array([[1, 1]]), off_path=3, k=3)
        >>> round(float(m["nDCG@3"][0]), 2), float(m["TreeDist@3"][0])
        (85.97, 1.3333333333333333)
    """
    d = np.asarray(topk_dist)[:, :k]
    if d.ndim != 2 or np.asarray(counts).shape[0] != d.shape[0]:
        raise ValueError(f"topk_dist must be [Q, k] and counts [Q, D+1], got {d.shape} and {np.asarray(counts).shape}")
    disc = 1.0 / np.log2(np.arange(2, d.shape[1] + 2))
    dcg = gains(d) @ disc
    idcg = ideal_dcg(counts, k)
    ndcg = 100.0 * np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
    dist = np.where(d >= 0, d, off_path).astype(float)
    tree = dist.mean(axis=1) if d.shape[1] else np.full(len(d), np.nan)
    return {f"nDCG@{k}": ndcg, f"TreeDist@{k}": tree}


__all__ = ["GRADED_METRICS", "gains", "ideal_dcg", "graded_metrics"]
