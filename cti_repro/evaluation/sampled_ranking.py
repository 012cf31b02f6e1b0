"""The 1 + K sampled-negatives protocol of Fashion-Gen retrieval (FashionBERT, Kaleido-BERT, MLF).

Each query is ranked against its one true match and K random non-matching candidates (K = 100 in
the papers), drawn once with a fixed seed, and Recall@K is the share of queries whose match ranks
within the top K of those K + 1. A cross-encoder scores every (query, candidate) pair with a
forward pass, so this protocol costs ``Q * (K + 1)`` pairs per direction where full ranking costs
``Q * N``: the reason the papers use it.

Ranks use the package's one tie rule (:func:`cti_repro.evaluation.xmodal_metrics.true_match_ranks`):
candidates by score descending, ties by candidate index ascending, so the rank of query i's match
is ``1 + #{j : s_j > s_i} + #{j < i : s_j == s_i}`` over the candidates j it is ranked against.
"""

from __future__ import annotations

import numpy as np
import torch

from cti_repro.evaluation.ties import _fixed_point


def sample_negatives(n_candidates: int, own: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` distinct candidate indices per query, none of them the query's own match.

    Args:
        n_candidates: N; candidates are ``0..N-1``.
        own: [Q] index of each query's true match (in ``0..N-1``).
        k: negatives per query (``min(k, N - 1)`` are drawn when N is smaller).
        seed: the draw's seed (same seed, same negatives, whatever else runs).

    Returns:
        int64 [Q, min(k, N - 1)], each row sorted ascending.
    """
    own = np.asarray(own, np.int64)
    if own.ndim != 1 or (own.size and (own.min() < 0 or own.max() >= n_candidates)):
        raise ValueError(f"own must be a 1-d array of indices in 0..{n_candidates - 1}")
    k = min(int(k), n_candidates - 1)
    if k < 1:
        raise ValueError(f"need at least 2 candidates for a negative, got {n_candidates}")
    rng = np.random.default_rng(seed)
    out = np.empty((len(own), k), np.int64)
    for r, i in enumerate(own):
        draw = rng.choice(n_candidates - 1, size=k, replace=False)  # 0..N-2, then skip the own index
        draw[draw >= i] += 1
        out[r] = np.sort(draw)
    return out


def ranks_among(pos: np.ndarray, neg: np.ndarray, own: np.ndarray, neg_idx: np.ndarray) -> np.ndarray:
    """1-based rank of each query's match among itself and its negatives, from their scores.

    Args:
        pos: [Q] score of each query's true match.
        neg: [Q, K] scores of its negatives.
        own: [Q] candidate index of the true match (for the tie rule).
        neg_idx: [Q, K] candidate indices of the negatives.

    Returns:
        int64 [Q] ranks in ``1..K+1``.
    """
    pos, neg = np.asarray(pos), np.asarray(neg)
    own, neg_idx = np.asarray(own), np.asarray(neg_idx)
    if neg.shape != neg_idx.shape or pos.shape != own.shape or neg.shape[:1] != pos.shape:
        raise ValueError(f"shapes disagree: pos {pos.shape}, neg {neg.shape}, own {own.shape}, neg_idx {neg_idx.shape}")
    p = pos[:, None]
    return (1 + (neg > p).sum(1) + ((neg == p) & (neg_idx < own[:, None])).sum(1)).astype(np.int64)


def ranks_from_matrix(scores: np.ndarray) -> np.ndarray:
    """Full-ranking ranks from a square score matrix: query i's match is candidate i.

    ``r_i = 1 + #{j : S_ij > S_ii} + #{j < i : S_ij == S_ii}`` (the text-image study's rule); for the
    other direction pass ``scores.T``.
    """
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"scores must be a square [N, N] matrix, got {s.shape}")
    d = np.diagonal(s)[:, None]
    j = np.arange(len(s))
    return (1 + (s > d).sum(1) + ((s == d) & (j[None, :] < j[:, None])).sum(1)).astype(np.int64)


def sampled_ranks_embeddings(queries: np.ndarray, candidates: np.ndarray, rows: np.ndarray,
                             neg_idx: np.ndarray) -> np.ndarray:
    """The sampled protocol for a dual encoder: cosine scores in the exact fixed point of
    :mod:`cti_repro.evaluation.ranking` (ties are real ties, as in the full ranking).

    Args:
        queries, candidates: [N, d] embeddings; query i's match is candidate i.
        rows: [Q] the query rows evaluated (a subsample of ``0..N-1`` or all of them).
        neg_idx: [Q, K] negatives of each of those queries (:func:`sample_negatives`).
    """
    q = _fixed_point(torch.as_tensor(np.asarray(queries)), True)
    c = _fixed_point(torch.as_tensor(np.asarray(candidates)), True)
    rows_t, neg_t = torch.as_tensor(np.asarray(rows, np.int64)), torch.as_tensor(np.asarray(neg_idx, np.int64))
    qs = q[rows_t]
    pos = (qs * c[rows_t]).sum(-1)
    neg = torch.einsum("qd,qkd->qk", qs, c[neg_t])
    return ranks_among(pos.numpy(), neg.numpy(), np.asarray(rows), np.asarray(neg_idx))


def query_subsample(n: int, max_queries: int, seed: int) -> np.ndarray:
    """The evaluated query rows: all ``0..n-1`` (``max_queries`` 0 or >= n) or a seeded sorted subsample."""
    if max_queries <= 0 or max_queries >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_queries, replace=False)).astype(np.int64)


__all__ = ["sample_negatives", "ranks_among", "ranks_from_matrix", "sampled_ranks_embeddings", "query_subsample"]
