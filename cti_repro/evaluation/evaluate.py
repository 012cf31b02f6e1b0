"""Fused evaluation: exact rankings and the paper's metrics in one pass, from embeddings or scores.

Speed, still exact. When float32 products are plain IEEE float32 (matmul precision "highest",
no TF32) the fixed-point vectors are first scored in float32, off by at most
``eps = 2 (2u + u^2 + gamma_d (1 + u)^2) ||q|| ||c||`` (u = 2**-24, any summation order). Only
candidates within ``2 eps`` of a selection boundary can be misordered, so only those are rescored
exactly; a row whose band of near-ties does not fit is redone exactly. :func:`evaluate_embeddings`
and :func:`evaluate_scores` fuse ranking and metrics: the top 10 gives P@k and AP@k, R-precision
counts the relevant candidates beating the R-th, so no row is ranked to depth R. The results are
bit-identical to ``evaluate_ranking(rank(..., k=required_depth(n_rel)))``.

Exact scores on the CPU (a dense score matrix, or the float64 fixed-point path) skip ``torch.topk``:
:mod:`cti_repro.evaluation.select` bounds each row's 10th (and R-th) score from below by block
maxima and sorts only the few columns above the bound, in numpy, one chunk per thread.
The float32 prefilter on the CPU multiplies with numpy's BLAS into one reused buffer and, on
large inputs, takes each row's best ``k + 6`` float32 scores with numba's one-pass kernel
(:mod:`cti_repro.evaluation.select_jit`, rows split over threads) instead of ``torch.topk``.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from cti_repro.evaluation.metrics import _safe_div, compute_metrics
from cti_repro.evaluation import select_jit
from cti_repro.evaluation.select import blocks_for, deep_blocks, relevant_in_top, topk_blocks
from cti_repro.evaluation.ranking import (
    _MARGIN, _Scorer, _as_scores, _check_chunk, _score_chunks, _topk_core, label_codes, use_jit,
)
from cti_repro.evaluation.ties import _tie_order, _tie_rank
from cti_repro.study import AP_NORMS


def _numpy_select(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype not in (torch.bfloat16, torch.float16)


def _take_rows(s: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``s[rows]``; by numpy on the CPU (a plain row copy there, several times faster than torch's)."""
    return torch.from_numpy(s.numpy()[rows.numpy()]) if _numpy_select(s) else s[rows]


def _cat(parts: list) -> torch.Tensor:
    if len(parts) == 1:
        return parts[0]
    return torch.from_numpy(np.concatenate([p.numpy() for p in parts])) if _numpy_select(parts[0]) else torch.cat(parts)


def _rp_counts(s, eps, n_rel, rel_of, exact_pairs, key=None) -> torch.Tensor:
    """Relevant columns among each row's exact top R (R = n_rel in [1, N]), without ranking to R.

    Columns more than 2 eps above the R-th (approximate) score are in, the others at least 2 eps
    below it are out; only the columns ``>= R-th - 2 eps`` (about R per row) are listed, and the
    band between is ordered exactly; its first ``R - #in`` members are in. ``rel_of(rows, cols)``
    tells relevance. The R-th score: ``np.partition`` on the CPU, else ``topk`` by R (powers of 2).
    """
    counts = torch.zeros(len(n_rel), dtype=torch.int64, device=s.device)
    if _numpy_select(s):  # numba's kernel up to depth 256, else numpy's introselect: much faster than topk
        a, depth = s.numpy(), n_rel.numpy()
        v = np.empty(len(a), a.dtype)
        near = (depth <= select_jit.MAX_DEPTH) & select_jit.available()
        if near.any():
            v[near] = select_jit.kth_largest(a[near], depth[near])
        if not near.all():  # np.partition costs one pass per distinct depth
            at = a.shape[1] - depth[~near]
            v[~near] = np.partition(a[~near], np.unique(at), axis=1)[np.arange(len(at)), at]
        groups = [(torch.arange(len(s)), torch.from_numpy(v)[:, None])]
    else:
        bucket = torch.ceil(torch.log2(n_rel.double())).long()
        groups = []
        for bk in torch.unique(bucket).tolist():
            rows = (bucket == bk).nonzero()[:, 0]
            top = torch.topk(s[rows], int(n_rel[rows].max()), dim=1).values
            groups.append((rows, top.gather(1, (n_rel[rows] - 1)[:, None])))
    for rows, v in groups:
        sb, m = (s if len(rows) == len(s) else s[rows]), len(rows)
        hi, lo = (v, v) if eps is None else (v + 2 * eps[rows], v - 2 * eps[rows])
        r, p = (sb >= lo).nonzero(as_tuple=True)  # row-major: p ascends within a row
        e = sb[r, p]
        sure, rel = e > hi[r, 0], rel_of(rows[r], p)
        n_in, rel_in = torch.bincount(r[sure], minlength=m), torch.bincount(r[sure & rel], minlength=m)
        band = (~sure).nonzero()[:, 0]
        r, p, e, rel = r[band], p[band], e[band], rel[band]
        e = e if eps is None else exact_pairs(rows[r], p)
        # order the band by (row, score desc, tie rank asc): stable sorts, least significant first
        o = torch.arange(len(r), device=s.device) if key is None else torch.sort(key[p], stable=True).indices
        o = o[torch.sort(e[o], descending=True, stable=True).indices]
        o = o[torch.sort(r[o], stable=True).indices]
        r, rel = r[o], rel[o]
        per_row = torch.bincount(r, minlength=m)
        take = (torch.arange(len(r), device=s.device) - (torch.cumsum(per_row, 0) - per_row)[r] < (n_rel[rows] - n_in)[r])
        counts[rows] = rel_in + torch.bincount(r[take & rel], minlength=m)
    return counts


class _Done:
    """A finished result with the ``Future.result()`` interface (no pool with one thread)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _numpy_chunk(s, start, kk, key, m, deep_m, c_codes, q_codes, n_rel, jit=False):
    """One chunk of exact CPU scores ``s`` [B, N] (numpy, columns in candidate order), all in numpy
    (the top ``kk`` by numba's one-pass kernel when ``jit``):
    ``(top kk columns [B, kk], their relevance [B, kk], R-precision numerators [B] as a tensor)``."""
    pos = select_jit.topk_rows(s, kk, key) if jit else topk_blocks(s, kk, key, m)
    q, big = q_codes[start : start + len(s)], n_rel[start : start + len(s)]
    rel = c_codes[pos] == q[:, None]
    counts = (rel & (np.arange(kk) < big[:, None])).sum(1)
    deep = np.flatnonzero(big > kk)
    if jit and len(deep):  # R > depth up to MAX_DEPTH: the same kernel, one list of R per row
        near, far = deep[big[deep] <= select_jit.MAX_DEPTH], deep[big[deep] > select_jit.MAX_DEPTH]
        if len(near):
            counts[near] = select_jit.relevant_in_top(s[near], big[near], key, c_codes, q[near])
        deep = far
    if len(deep):  # R > depth: count the relevant columns in the exact top R
        counts[deep] = relevant_in_top(s[deep], big[deep], key, deep_m, lambda r, p: c_codes[p] == q[deep[r]])
    return pos, rel, torch.from_numpy(counts)


def _fused_eval(chunks, n_q, n_c, device, query_labels, candidate_labels, k, ap_norms, chunk_size, pairs=None,
                cand_index=None, key=None, order=None):
    """Body of :func:`evaluate_embeddings` / :func:`evaluate_scores`. ``chunks`` yields ``(start,
    end, scores, eps, exact_pairs, exact_rows)``; ``pairs(rows, pos)`` scores pairs exactly by
    global query row; column j is candidate ``cand_index[j]``."""
    bad_norms = [n for n in ap_norms if n not in AP_NORMS]
    if bad_norms:
        raise ValueError(f"unknown AP normalisation {bad_norms[0]!r}; expected one of {AP_NORMS}")
    q_codes, c_codes, n_rel = label_codes(query_labels, candidate_labels)
    if len(c_codes) != n_c or len(q_codes) != n_q:
        raise ValueError(f"need {n_q} query and {n_c} candidate labels, got {len(q_codes)} and {len(c_codes)}")
    kk = min(max(int(k), 10), n_c)
    c_pos = torch.from_numpy(c_codes).to(device)
    c_pos = c_pos if cand_index is None else c_pos[cand_index]  # label code of each column
    qc, nr, ar = torch.from_numpy(q_codes).to(device), torch.from_numpy(n_rel).to(device), torch.arange(kk, device=device)
    tops, rels, counts = [torch.zeros((0, kk), dtype=torch.int64)], [np.zeros((0, kk), bool)], torch.zeros(n_q, dtype=torch.int64, device=device)
    deep_rows: list = []  # rows with R > depth, across chunks: one R-precision pass per chunk_size of them

    def flush():
        rows, sc = torch.cat([r for r, _, _ in deep_rows]), _cat([x for _, x, _ in deep_rows])
        eps = None if deep_rows[0][2] is None else torch.cat([e for _, _, e in deep_rows])
        ep = None if eps is None else (lambda r, p: pairs(rows[r], p))
        counts[rows] = _rp_counts(sc, eps, nr[rows], lambda r, p: c_pos[p] == qc[rows[r]], ep, key)
        deep_rows.clear()

    m = blocks_for(n_c, kk)
    key_np = None if key is None else key.cpu().numpy()
    deep_m, c_np = deep_blocks(n_c, int(n_rel.max(initial=0))), c_pos.cpu().numpy()
    cand_cpu = None if cand_index is None else cand_index.cpu()
    # numpy chunks run on torch's number of threads (numpy releases the GIL), at most that many in flight
    workers = max(1, torch.get_num_threads())
    jit = use_jit(n_q * n_c)
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    pending: deque = deque()
    done: dict = {}  # start -> (positions, relevance) of the chunks run in numpy

    def collect(limit: int) -> None:
        while len(pending) > limit:
            start, end, fut = pending.popleft()
            pos, rel_top, counts[start:end] = fut.result()
            pos = torch.from_numpy(pos)
            done[start] = (pos if cand_cpu is None else cand_cpu[pos], rel_top)

    try:
        for start, end, s, eps, exact_pairs, exact_rows in chunks:
            if eps is None and _numpy_select(s) and s.is_floating_point():  # exact, on the CPU
                args = (s.contiguous().numpy(), start, kk, key_np, m, deep_m, c_np, q_codes, n_rel, jit)
                pending.append((start, end, pool.submit(_numpy_chunk, *args) if pool else _Done(_numpy_chunk(*args))))
                collect(workers)
                tops.append(start)
                rels.append(None)
                continue
            pos, _ = _topk_core(s, kk, eps, exact_pairs, exact_rows, values=False, key=key, order=order, jit=jit)
            if pos.device.type == "cpu":  # numpy: torch's small parallel ops wait on thread barriers
                pn, big_np = pos.numpy(), n_rel[start:end]
                rel_np = c_np[pn] == q_codes[start:end, None]
                counts[start:end] = torch.from_numpy((rel_np & (np.arange(kk) < big_np[:, None])).sum(1))
                deep = torch.from_numpy(np.flatnonzero(big_np > kk))
                top = pos if cand_cpu is None else torch.from_numpy(cand_cpu.numpy()[pn])
            else:
                rel_top, big = c_pos[pos] == qc[start:end, None], nr[start:end]
                counts[start:end] = (rel_top & (ar < big[:, None])).sum(1)
                deep = (big > kk).nonzero()[:, 0]
                top, rel_np = (pos if cand_index is None else cand_index[pos]).cpu(), rel_top.cpu().numpy()
            if len(deep):  # R > depth: count the relevant columns that beat the R-th
                deep_rows.append((deep + start, _take_rows(s, deep), None if eps is None else eps[deep]))
                if sum(len(r) for r, _, _ in deep_rows) >= chunk_size:
                    flush()
            tops.append(top)
            rels.append(rel_np)
        collect(0)
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    if deep_rows:
        flush()
    for i, t in enumerate(tops):
        if isinstance(t, int):  # a numpy chunk's start: its results
            tops[i], rels[i] = done[t]
    rel_np = np.concatenate(rels)
    rp = _safe_div(counts.cpu().numpy().astype(np.float64), n_rel.astype(np.float64)) * 100.0
    out = {norm: {**compute_metrics(rel_np, n_rel, norm), "R-precision": rp} for norm in ap_norms}
    return torch.cat(tops), out


def evaluate_embeddings(
    queries: Any, candidates: Any, query_labels: Any, candidate_labels: Any, tie_key: Any | None = None,
    k: int = 10, chunk_size: int = 1024, device: str | torch.device | None = None, normalize: bool = True,
    ap_norms: tuple[str, ...] = ("hits",), prefilter: bool | None = None,
) -> tuple[torch.Tensor, dict[str, dict[str, np.ndarray]]]:
    """Rank all candidates for all queries and compute the paper's metrics, fused and exact.

    Bit-identical to ``evaluate_ranking(rank(queries, candidates, required_depth(n_rel), ...)[0],
    query_labels, candidate_labels, norm)`` per AP normalisation, but no row is ranked deeper than
    ``max(k, 10)``. ``tie_key``, ``chunk_size``, ``device``, ``normalize``, ``prefilter``: as for
    :func:`rank`; labels: relevant iff equal; ``ap_norms``: see :mod:`cti_repro.evaluation.metrics`.

    Returns:
        ``(indices [Q, min(max(k, 10), N)] int64 on the CPU, {ap_norm: {metric: [Q] percent}})``.
    """
    _check_chunk(chunk_size)
    queries, candidates = torch.as_tensor(queries), torch.as_tensor(candidates)
    device = torch.device(device) if device is not None else queries.device
    n_q, n_c = queries.shape[0], candidates.shape[0]
    order = torch.from_numpy(_tie_order(tie_key, n_c))
    scorer = _Scorer(queries, candidates, order, normalize, device, prefilter, min(max(k, 10), n_c) + _MARGIN)
    if n_c == 0:
        raise ValueError("no candidates")
    chunks = ((a, min(a + chunk_size, n_q), *scorer.chunk(a, min(a + chunk_size, n_q)))
              for a in range(0, n_q, chunk_size))
    return _fused_eval(chunks, n_q, n_c, device, query_labels, candidate_labels, k, ap_norms, chunk_size,
                       pairs=scorer.pairs, cand_index=order.to(device))


def evaluate_scores(
    scores: Any, query_labels: Any, candidate_labels: Any, tie_key: Any | None = None, k: int = 10,
    chunk_size: int = 1024, device: str | torch.device | None = None, ap_norms: tuple[str, ...] = ("hits",),
) -> tuple[torch.Tensor, dict[str, dict[str, np.ndarray]]]:
    """:func:`evaluate_embeddings` for a ``[Q, N]`` score matrix (e.g. BM25; no NaN): bit-identical to
    ``evaluate_ranking(rank_scores(scores, required_depth(n_rel), ...)[0], ...)``."""
    _check_chunk(chunk_size)
    scores, device = _as_scores(scores, device)
    if scores.shape[1] == 0:
        raise ValueError("no candidates")
    order = torch.from_numpy(_tie_order(tie_key, scores.shape[1])).to(device)
    chunks = ((a, b, s, None, None, lambda rows, s=s: s[rows]) for a, b, s in _score_chunks(scores, chunk_size, device))
    return _fused_eval(chunks, scores.shape[0], scores.shape[1], device, query_labels, candidate_labels, k, ap_norms,
                       chunk_size, key=_tie_rank(order), order=order)


def evaluate_ranking(
    indices: Any, query_labels: Any, candidate_labels: Any, ap_norm: str = "hits"
) -> dict[str, np.ndarray]:
    """Per-query metrics of a ranking where a candidate is relevant iff its label equals the query's.

    Args:
        indices: ``[Q, depth]`` candidate indices, best first (from :func:`rank`).
        query_labels: ``[Q]`` the label of each query (its category name).
        candidate_labels: ``[N]`` the label of each candidate.
        ap_norm: AP@k normaliser, see :func:`cti_repro.evaluation.metrics.average_precision_at_k`.

    Returns:
        ``{metric: [Q] float64}`` in percent (see :func:`cti_repro.evaluation.metrics.compute_metrics`).
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


__all__ = ["evaluate_embeddings", "evaluate_scores", "evaluate_ranking"]
