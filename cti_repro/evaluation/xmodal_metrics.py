"""Metrics of the text <-> image study (Rubio et al. 2017): the rank of each query's one true match.

Query i (a product's text, or its image) has exactly one relevant candidate: the same product's
image (text). Everything is computed from the 1-based rank r_i of that match among the N test
candidates, so a result stores the ranks and any metric can be recomputed later:

==================  ==============================================================================
metric              formula (percent unless stated)
==================  ==============================================================================
median rank %       ``MedR% = 100 * median_i(r_i) / N`` (Rubio et al.'s Table 1)
Recall@K            ``R@K = 100 * (1/Q) * #{i : r_i <= K}``
Recall@K%           ``R@K% = R@k`` with ``k = max(1, ceil(K * N / 100))`` (top K percent of the test set)
MRR                 ``MRR = (1/Q) * sum_i 1 / r_i`` (in [0, 1])
accuracy            ``Acc = 100 * (1/n) * #{j : argmax(logits_j) == y_j}`` (the auxiliary heads)
==================  ==============================================================================

Ranks come from :func:`true_match_ranks`, which scores queries in chunks (never a full N x N
matrix: 400k test products at 64 query rows per chunk is 400k x 64 scores at a time) with the
exact fixed-point cosine of :mod:`cti_repro.evaluation.ranking`, so ties are real ties, and are
broken by the ``tie_key`` convention of :func:`cti_repro.evaluation.ranking.rank` (lower key first).
The study passes the CtI rows' keys (:func:`cti_repro.run.row.tie_order` with ``eval.tie_rule`` /
``eval.tie_seed``: a seeded random permutation by default), so no catalogue order wins the ties.

Every percent cut-off (the Recall@K% table and the recall curve) uses one rounding rule,
:func:`percent_cutoff`: the top ``ceil(K * N / 100)`` candidates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from cti_repro.evaluation.ties import _fixed_point, _tie_order, _tie_rank

# Scores held at once (float64): 2**24 elements = 128 MiB, whatever N is.
CHUNK_ELEMENTS = 1 << 24


def true_match_ranks(
    queries: np.ndarray, candidates: np.ndarray, chunk_size: int | None = None, normalize: bool = True,
    device: str = "cpu", tie_key: np.ndarray | None = None,
) -> np.ndarray:
    """1-based rank of candidate i for query i, by cosine (``normalize``) or dot product.

    ``r_i = 1 + #{j : s_ij > s_ii} + #{j : s_ij == s_ii, t_j < t_i}`` with ``t`` the tie rank of
    :func:`cti_repro.evaluation.ranking.rank` (``tie_key`` ascending, then index): the position of
    candidate i in the full ranking that ``rank(queries, candidates, N, tie_key)`` returns.

    Args:
        queries: [N, d] query embeddings; row i's true match is row i of ``candidates``.
        candidates: [N, d] candidate embeddings.
        tie_key: [N] sortable tie keys of the candidates (default: the candidate index).
        chunk_size: query rows per chunk (default: as many as fit :data:`CHUNK_ELEMENTS` scores).
        normalize: L2-normalise both sides (cosine); else the raw dot product.
        device: where the chunk products run (the result does not depend on it: fixed point).

    Returns:
        int64 array [N] of ranks in ``1..N``.
    """
    q, c = np.asarray(queries), np.asarray(candidates)
    if q.ndim != 2 or c.ndim != 2 or q.shape != c.shape:
        raise ValueError(f"queries and candidates must both be [N, d] with the same shape, got {q.shape} and {c.shape}")
    n = len(q)
    if n == 0:
        return np.zeros(0, np.int64)
    if normalize:
        qt, ct = _fixed_point(torch.as_tensor(q), True), _fixed_point(torch.as_tensor(c), True)
    else:  # one common power-of-two scale for both sides keeps every comparison exact
        both = _fixed_point(torch.as_tensor(np.concatenate([q, c])), False)
        qt, ct = both[:n], both[n:]
    ct = ct.to(device)
    rows = chunk_size or max(1, CHUNK_ELEMENTS // n)
    out = np.empty(n, np.int64)
    tie = _tie_rank(torch.from_numpy(_tie_order(tie_key, n)))
    col = (tie if tie is not None else torch.arange(n)).to(device)
    for start in range(0, n, rows):
        qs = qt[start : start + rows].to(device)
        s = qs @ ct.T  # exact: integer products below 2**53 (see ranking's module docstring)
        idx = torch.arange(start, start + len(qs), device=device)
        own = s.gather(1, idx[:, None])
        better = (s > own).sum(1) + ((s == own) & (col[None, :] < col[idx][:, None])).sum(1)
        out[start : start + len(qs)] = (better + 1).cpu().numpy()
    return out


def _ranks(ranks: Sequence[int] | np.ndarray) -> np.ndarray:
    r = np.asarray(ranks, dtype=np.int64)
    if r.ndim != 1:
        raise ValueError(f"ranks must be one-dimensional, got shape {r.shape}")
    if r.size and r.min() < 1:
        raise ValueError("ranks are 1-based: every rank must be >= 1")
    return r


def median_rank_percent(ranks: Sequence[int] | np.ndarray, n_candidates: int) -> float:
    """``100 * median(r) / N`` (NaN for no queries)."""
    r = _ranks(ranks)
    return float(100.0 * np.median(r) / n_candidates) if r.size else float("nan")


def recall_at_k(ranks: Sequence[int] | np.ndarray, k: int) -> float:
    """``100 * mean(r <= k)``: percent of queries whose true match is in the top ``k``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    r = _ranks(ranks)
    return float(100.0 * np.mean(r <= k)) if r.size else float("nan")


def percent_cutoff(n_candidates: int, percent: float) -> int:
    """``max(1, ceil(percent * N / 100))``: the rank cut-off of the top ``percent`` of N candidates."""
    return max(1, math.ceil(percent * n_candidates / 100.0 - 1e-9))


def recall_at_percent(ranks: Sequence[int] | np.ndarray, n_candidates: int, percent: float) -> float:
    """Recall@K%: :func:`recall_at_k` at ``k = percent_cutoff(N, K)``."""
    return recall_at_k(ranks, percent_cutoff(n_candidates, percent))


def mean_reciprocal_rank(ranks: Sequence[int] | np.ndarray) -> float:
    """``mean(1 / r)`` in [0, 1]."""
    r = _ranks(ranks)
    return float(np.mean(1.0 / r)) if r.size else float("nan")


def accuracy(logits: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """``100 * mean(argmax(logits, 1) == y)`` for the auxiliary classification heads."""
    logits, y = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(y):
        raise ValueError(f"logits must be [n, classes] with n = len(labels), got {logits.shape} and {y.shape}")
    return float(100.0 * np.mean(logits.argmax(1) == y)) if len(y) else float("nan")


def recall_curve(ranks: Sequence[int] | np.ndarray, n_candidates: int, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Recall (percent) against the rank cut-off in percent of the test set, for the report's figure.

    Returns:
        (cut-offs in percent of N [points], recall in percent [points]); the recall at cut-off
        x > 0 is :func:`recall_at_percent` at x (the table's rounding), 0 at x = 0.
    """
    r = np.sort(_ranks(ranks))
    x = np.linspace(0.0, 100.0, points)
    k = np.array([percent_cutoff(n_candidates, p) if p > 0 else 0 for p in x])
    y = 100.0 * np.searchsorted(r, k, side="right") / max(len(r), 1)
    return x, y


def xmodal_means(ranks: dict[str, np.ndarray], n_candidates: int,
                 ks: Sequence[int] = (1, 5, 10), percents: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Every ``means`` key of a result (``MedR%_t2i``, ``R@5_i2t``, ``R@5%_t2i``, ``MRR_i2t``, ...).

    Args:
        ranks: direction (``t2i``, ``i2t``) -> 1-based ranks of the true match.
        n_candidates: N, the number of test candidates.
        ks: the Recall@K cut-offs.
        percents: the Recall@K% cut-offs (percent of N).
    """
    out: dict[str, float] = {}
    for d in ranks:
        out[f"MedR%_{d}"] = median_rank_percent(ranks[d], n_candidates)
    for d in ranks:
        for k in ks:
            out[f"R@{k}_{d}"] = recall_at_k(ranks[d], k)
    for d in ranks:
        for p in percents:
            out[f"R@{p}%_{d}"] = recall_at_percent(ranks[d], n_candidates, p)
        out[f"MRR_{d}"] = mean_reciprocal_rank(ranks[d])
    return out


def median_rank_by_group(ranks: Sequence[int] | np.ndarray, groups: Sequence[str], n_candidates: int) -> dict[str, dict]:
    """Per group (e.g. root category): query count and median rank in percent of N (all N candidates)."""
    r, g = _ranks(ranks), np.asarray(groups, dtype=object)
    if len(r) != len(g):
        raise ValueError(f"{len(r)} ranks but {len(g)} group labels")
    return {str(k): {"queries": int((g == k).sum()), "MedR%": median_rank_percent(r[g == k], n_candidates)}
            for k in sorted(set(g.tolist()))}


__all__ = ["true_match_ranks", "median_rank_percent", "recall_at_k", "recall_at_percent", "percent_cutoff",
           "mean_reciprocal_rank", "accuracy", "recall_curve", "xmodal_means", "median_rank_by_group",
           "CHUNK_ELEMENTS"]
