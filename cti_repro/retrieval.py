"""Exact, deterministic top-k retrieval over all candidates, and its evaluation.

Ranking order: score descending, then ``tie_key`` ascending (then candidate index ascending).
``tie_key`` is meant to be the rank of each candidate's product id in ascending id order, so the
in-memory ranking breaks ties exactly like :func:`cti_repro.metrics.evaluate_trec` does on a run
file whose docids are those product ids.

How the order is made exact. Two things can make a ranking depend on more than its inputs:

* ``torch.topk`` promises nothing about ties. So (1) the candidates (or score columns) are permuted
  once into tie-key order, making "smaller tie key" mean "smaller column position"; (2) per query
  chunk, ``topk`` gives the k-th largest score ``t`` of each row: every column scoring ``> t`` is in
  the top k, and of the columns scoring ``== t`` the leftmost ones fill the remaining slots (a
  cumulative count picks them), so exactly the right k columns are selected whatever ``topk`` did
  with ties; (3) these k columns, listed in position order, are sorted by score with a *stable*
  descending sort, so equal scores keep the tie-key order.
* Floating-point matrix products are not reproducible bit for bit: BLAS picks different kernels
  and summation orders for different shapes (a chunk of 1 query vs 1024) and even for different
  columns of one product, so two identical candidate vectors can score 1e-16 apart. :func:`rank`
  therefore scores in *fixed point*: both sides are L2-normalised (or, with ``normalize=False``,
  scaled by one power of two so every row norm is <= 1) in float64 on the CPU, then rounded to
  integer multiples of 2**-26. All products and partial sums of such integers are integers below
  2**53, so the float64 matrix product is exact in any summation order, on any device. Scores are
  the exact integer dot products times 2**-52; rounding each coordinate by <= 2**-27 moves a
  cosine by at most ``sqrt(d) * 2**-26`` (7e-7 for d = 2048; ~1e-8 typically), no more than the
  rounding error of a float32 product.
  Chunked and unchunked, CPU and CUDA rankings are therefore identical, and duplicate vectors tie
  exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cti_repro.metrics import compute_metrics


def _tie_order(tie_key: Any | None, n: int) -> np.ndarray:
    """Candidate indices sorted by ``tie_key`` ascending (stable: equal keys keep index order)."""
    if tie_key is None:
        return np.arange(n, dtype=np.int64)
    key = tie_key.detach().cpu().numpy() if isinstance(tie_key, torch.Tensor) else np.asarray(tie_key)
    if key.shape != (n,):
        raise ValueError(f"tie_key must have shape [{n}], got {key.shape}")
    return np.argsort(key, kind="stable").astype(np.int64)


def _topk_exact(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k columns of each row by score descending, then column position ascending.

    Args:
        scores: ``[B, N]`` score matrix (no NaN), ``1 <= k <= N``.
        k: number of columns to return.

    Returns:
        ``(positions [B, k] int64, values [B, k])``.
    """
    b = scores.shape[0]
    kth = torch.topk(scores, k, dim=1, largest=True, sorted=False).values.min(dim=1, keepdim=True).values
    above = scores > kth
    at = scores == kth
    # Slots left for the boundary value; fill them with the leftmost (= smallest tie key) columns.
    free = k - above.sum(dim=1, keepdim=True)
    take = above | (at & (at.cumsum(dim=1, dtype=torch.int32) <= free))
    pos = take.nonzero()[:, 1].view(b, k)  # nonzero is row-major, so positions ascend per row
    vals = scores.gather(1, pos)
    vals, order = torch.sort(vals, dim=1, descending=True, stable=True)
    return pos.gather(1, order), vals


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _check_chunk(chunk_size: int) -> None:
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")


FIXED_POINT_BITS = 26  # coordinates become integer multiples of 2**-26; see the module docstring


def _fixed_point(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Rows of ``x`` as float64 integers ``round(x_hat * 2**26)`` with ``||x_hat|| <= 1``.

    ``x_hat`` is the L2-normalised row (``normalize=True``) or ``x`` times one power of two that
    brings the largest row norm to <= 1 (a global scale: it cannot change any ranking).
    Computed on the CPU in float64 so the integers do not depend on the compute device.
    """
    x = x.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf")
    if normalize:
        x = F.normalize(x, dim=1)
    else:
        top = float(x.norm(dim=1).max()) if len(x) else 0.0
        if top > 0:
            x = x * 2.0 ** -np.ceil(np.log2(top))  # exact: a power of two
    return torch.round(x * 2.0**FIXED_POINT_BITS)


def rank(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    tie_key: Any | None = None,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
    normalize: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k candidates of each query by cosine similarity (or dot product).

    The score matrix is built chunk by chunk over the queries (``chunk_size`` rows at a time) so
    memory stays at ``chunk_size x N`` float64 scores. Order: score descending, then ``tie_key``
    ascending, then candidate index ascending. Scores are computed in fixed point, so the result
    does not depend on ``chunk_size`` or the device (see the module docstring).

    Args:
        queries: ``[Q, d]`` query embeddings (numpy arrays are accepted too).
        candidates: ``[N, d]`` candidate embeddings.
        k: ranking depth; clipped to N.
        tie_key: ``[N]`` sortable keys (e.g. the rank of each product id in ascending id order);
            default: the candidate index.
        chunk_size: query rows per matrix product.
        device: where to multiply (e.g. ``"cuda"``); default: the queries' device.
        normalize: L2-normalise both sides (cosine similarity); otherwise raw dot products up to
            one global positive factor (``scores`` are then ``q . c`` times a power of two).

    Returns:
        ``(indices [Q, min(k, N)] int64, scores [Q, min(k, N)] float64)`` on the CPU; indices
        point into ``candidates``; scores are the (quantised) cosines.

    Raises:
        ValueError: bad shapes, ``k < 1``, or non-finite embeddings.
    """
    _check_k(k)
    _check_chunk(chunk_size)
    queries, candidates = torch.as_tensor(queries), torch.as_tensor(candidates)
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise ValueError(f"need [Q, d] queries and [N, d] candidates, got {tuple(queries.shape)} "
                         f"and {tuple(candidates.shape)}")
    device = torch.device(device) if device is not None else queries.device
    n_q, n_c = queries.shape[0], candidates.shape[0]
    k = min(int(k), n_c)
    if n_q == 0 or k == 0:
        return torch.zeros((n_q, k), dtype=torch.int64), torch.zeros((n_q, k), dtype=torch.float64)

    order = torch.from_numpy(_tie_order(tie_key, n_c))
    qry = _fixed_point(queries, normalize)
    cand = _fixed_point(candidates, normalize)[order]
    # Exactness needs every |partial sum| < 2**53; by Cauchy-Schwarz it is <= ||q|| * ||c||.
    bound = float(qry.norm(dim=1).max()) * float(cand.norm(dim=1).max())
    if bound >= 2.0**53:  # pragma: no cover - needs d in the billions
        raise ValueError("embedding dimension too large for exact fixed-point scores")
    qry, cand_t = qry.to(device), cand.to(device).T.contiguous()
    order_dev = order.to(device)
    unit = 2.0 ** (-2 * FIXED_POINT_BITS)

    idx_out, val_out = [], []
    for start in range(0, n_q, chunk_size):
        pos, vals = _topk_exact(qry[start : start + chunk_size] @ cand_t, k)
        idx_out.append(order_dev[pos].cpu())
        val_out.append(vals.cpu() * unit)  # exact: a power of two
    return torch.cat(idx_out), torch.cat(val_out)


def rank_scores(
    scores: torch.Tensor,
    k: int,
    tie_key: Any | None = None,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of a precomputed score matrix (e.g. BM25), with the same tie rule as :func:`rank`.

    Args:
        scores: ``[Q, N]`` scores, higher is better (numpy arrays are accepted too); no NaN.
        k: ranking depth; clipped to N.
        tie_key: ``[N]`` sortable keys; default: the column index.
        chunk_size: rows processed at a time.
        device: where to compute; default: the scores' device.

    Returns:
        ``(indices [Q, min(k, N)] int64, scores [Q, min(k, N)])`` on the CPU, in the input dtype.
    """
    _check_k(k)
    _check_chunk(chunk_size)
    scores = torch.as_tensor(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape [Q, N], got {tuple(scores.shape)}")
    device = torch.device(device) if device is not None else scores.device
    n_q, n_c = scores.shape
    k = min(int(k), n_c)
    if n_q == 0 or k == 0:
        return torch.zeros((n_q, k), dtype=torch.int64), torch.zeros((n_q, k), dtype=scores.dtype)

    order_dev = torch.from_numpy(_tie_order(tie_key, n_c)).to(device)
    idx_out, val_out = [], []
    for start in range(0, n_q, chunk_size):
        s = scores[start : start + chunk_size].to(device)[:, order_dev]
        if s.is_floating_point() and torch.isnan(s).any():
            raise ValueError("NaN in the score matrix")
        pos, vals = _topk_exact(s, k)
        idx_out.append(order_dev[pos].cpu())
        val_out.append(vals.cpu())
    return torch.cat(idx_out), torch.cat(val_out)


def label_codes(query_labels: Any, candidate_labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer codes of string labels over one shared vocabulary.

    Args:
        query_labels: ``[Q]`` labels.
        candidate_labels: ``[N]`` labels.

    Returns:
        ``(query_codes [Q], candidate_codes [N], n_rel [Q])`` where ``n_rel[q]`` counts the
        candidates whose label equals query ``q``'s label.
    """
    q = np.asarray(query_labels, dtype=object).astype(str)
    c = np.asarray(candidate_labels, dtype=object).astype(str)
    vocab, codes = np.unique(np.concatenate([c, q]), return_inverse=True)
    c_codes, q_codes = codes[: len(c)], codes[len(c) :]
    n_rel = np.bincount(c_codes, minlength=len(vocab))[q_codes]
    return q_codes, c_codes, n_rel.astype(np.int64)


def required_depth(n_rel: Any) -> int:
    """Ranking depth needed for P@10 and exact R-precision: ``max(10, max R)``.

    Args:
        n_rel: ``[Q]`` number of relevant candidates per query.

    Returns:
        The depth as an int (pass it as ``k`` to :func:`rank`, which clips it to N).
    """
    n = n_rel.detach().cpu().numpy() if isinstance(n_rel, torch.Tensor) else np.asarray(n_rel)
    return max(10, int(n.max(initial=0)))


def evaluate_ranking(
    indices: Any, query_labels: Any, candidate_labels: Any, ap_norm: str = "hits"
) -> dict[str, np.ndarray]:
    """Per-query metrics of a ranking where a candidate is relevant iff its label equals the query's.

    Args:
        indices: ``[Q, depth]`` candidate indices, best first (from :func:`rank`).
        query_labels: ``[Q]`` the label of each query (its category name).
        candidate_labels: ``[N]`` the label of each candidate.
        ap_norm: AP@k normaliser, see :func:`cti_repro.metrics.average_precision_at_k`.

    Returns:
        ``{metric: [Q] float64}`` in percent (see :func:`cti_repro.metrics.compute_metrics`).
        A query with no relevant candidate scores 0 everywhere; the caller decides whether to
        average over it.

    Raises:
        ValueError: if the ranking is shallower than ``min(N, max R)``, which would make
            R-precision silently wrong (rank with ``k=required_depth(n_rel)``).
    """
    idx = indices.detach().cpu().numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
    q_codes, c_codes, n_rel = label_codes(query_labels, candidate_labels)
    if idx.ndim != 2 or idx.shape[0] != len(q_codes):
        raise ValueError(f"indices must have shape [{len(q_codes)}, depth], got {idx.shape}")
    need = min(len(c_codes), int(n_rel.max(initial=0)))
    if idx.shape[1] < need:
        raise ValueError(f"ranking depth {idx.shape[1]} < {need} relevant items of some query: "
                         "R-precision would be wrong; rank with k=required_depth(n_rel)")
    rel = c_codes[idx] == q_codes[:, None]
    return compute_metrics(rel, n_rel, ap_norm)
