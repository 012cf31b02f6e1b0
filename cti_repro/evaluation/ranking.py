"""Exact, deterministic top-k retrieval over all candidates, and its evaluation.

Ranking order: score descending, then ``tie_key`` ascending (then candidate index ascending).
With ``eval.tie_rule: id`` the ``tie_key`` is the rank of each candidate's product id in ascending
id order, so among equal scores the smallest id comes first. That is the *opposite* of trec_eval's
rule, which :func:`cti_repro.evaluation.trec.evaluate_trec` follows (docid descending): a run file
of these rankings with tied scores scores differently there (write distinct scores, e.g. from the
rank, to keep this order). ``eval.tie_rule: random`` favours neither end. Two things could make a
ranking depend on more than the key: ties that ``torch.topk`` orders as it likes, and float
products that differ in the last bit; :mod:`cti_repro.evaluation.ties` holds both remedies (exact
tie-order top-k and fixed-point scores) and says why they are exact.

Speed, still exact: see :class:`_Scorer` (float32 prefilter, exact rescoring at the boundary);
fused ranking + metrics are in :mod:`cti_repro.evaluation.evaluate`.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from cti_repro.evaluation import select_jit
from cti_repro.evaluation.ties import FIXED_POINT_BITS, _fixed_point, _tie_order, _tie_rank, _topk_exact


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _check_chunk(chunk_size: int) -> None:
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")


_MARGIN = 6  # columns fetched beyond k, so a boundary band of near-ties usually fits
_PAIR_BLOCK = 1 << 23  # elements per block when rescoring (row, column) pairs exactly


def prefilter_available(device: str | torch.device = "cpu") -> bool:
    """Whether float32 products on ``device`` are IEEE float32 (no TF32 / bf16), as the bound needs."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    return not (torch.device(device).type == "cuda" and torch.backends.cuda.matmul.allow_tf32)


def _eps_factor(d: int) -> float:
    """Twice the float32 error bound of a d-term dot product, per unit of ||q|| ||c||."""
    u = 2.0**-24
    return 2.0 * (2.0 * u + u * u + d * u / (1.0 - d * u) * (1.0 + u) ** 2)


class _Scorer:
    """Fixed-point scores of query chunks against tie-ordered candidates (:mod:`cti_repro.evaluation.ties`)."""

    def __init__(self, queries, candidates, order, normalize: bool, device, prefilter: bool | None, width: int):
        if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
            raise ValueError(f"need [Q, d] queries and [N, d] candidates, got {tuple(queries.shape)} "
                             f"and {tuple(candidates.shape)}")
        qry, cand = _fixed_point(queries, normalize), _fixed_point(candidates, normalize)[order]
        # Exactness needs every |partial sum| < 2**53; by Cauchy-Schwarz it is <= ||q|| * ||c||.
        # (numpy's single-threaded sums: the norms only size the bound, which has a factor 2 to spare)
        q_norm = torch.from_numpy(np.sqrt(np.einsum("ij,ij->i", qry.numpy(), qry.numpy())))
        c_max = float(np.sqrt(np.einsum("ij,ij->i", cand.numpy(), cand.numpy())).max()) if len(cand) else 0.0
        if (float(q_norm.max()) if len(q_norm) else 0.0) * c_max >= 2.0**53:  # pragma: no cover - needs d in the billions
            raise ValueError("embedding dimension too large for exact fixed-point scores")
        if prefilter is None:  # auto: when the bound holds and few columns need rescoring
            prefilter = prefilter_available(device) and 16 * width <= len(cand)
        elif prefilter and not prefilter_available(device):
            raise ValueError("prefilter=True needs IEEE float32 products: float32 matmul precision 'highest', no TF32")
        self.q, self.c, self.prefilter = qry.to(device), cand.to(device), bool(prefilter)
        if self.prefilter:
            unit = 2.0**-FIXED_POINT_BITS
            # x * unit rounds to float32 exactly as x does, then scaled: unit is a power of two
            self.q32 = qry.to(torch.float32).mul_(unit).to(device)
            c32 = cand.to(torch.float32).mul_(unit)  # [N, d]: a BLAS takes the transposed operand as it is
            self.c32t = c32.T if device.type == "cpu" else c32.T.contiguous().to(device)
            # On the CPU the float32 product is numpy's (its BLAS, OpenBLAS in the wheels, ran 1.3x to 2x
            # faster than torch's MKL on the AMD EPYC of the benchmarks); the bound holds for any BLAS.
            self.eps = (_eps_factor(qry.shape[1]) * q_norm * c_max * unit**2).float()[:, None].to(device)
            self._out: torch.Tensor | None = None  # the CPU float32 scores, reused chunk after chunk
        else:
            self.ct = self.c.T.contiguous()

    def pairs(self, rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Exact scores of (query ``rows[i]``, candidate position ``pos[i]``) pairs: integer sums
        (exact in any order, so numpy's sums on the CPU equal torch's bit for bit)."""
        step = max(1, _PAIR_BLOCK // max(1, self.q.shape[1]))
        if self.q.device.type == "cpu":  # numpy: torch's small parallel gathers wait on thread barriers
            q, c, r, p = self.q.numpy(), self.c.numpy(), rows.numpy(), pos.numpy()
            return torch.from_numpy(np.concatenate([np.einsum("ij,ij->i", q[r[i : i + step]], c[p[i : i + step]])
                                                    for i in range(0, len(r), step)] or [np.zeros(0)]))
        return torch.cat([(self.q[rows[i : i + step]] * self.c[pos[i : i + step]]).sum(1)
                          for i in range(0, len(rows), step)] or [self.q.new_zeros(0)])

    def chunk(self, start: int, end: int):
        """``(scores [B, N], eps [B, 1] or None if exact, exact_pairs, exact_rows)`` of queries start:end
        (the two functions take row indices local to the chunk). The float32 scores on the CPU are
        written into one buffer that the next call overwrites (fresh pages for every chunk cost
        page faults comparable to the top-k): callers copy what they keep."""
        q = self.q[start:end]

        def exact_pairs(rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
            return self.pairs(rows + start, pos)

        def exact_rows(rows: torch.Tensor) -> torch.Tensor:
            return q[rows] @ self.c.T

        if self.prefilter:
            q32 = self.q32[start:end]
            if q32.device.type != "cpu":
                return q32 @ self.c32t, self.eps[start:end], exact_pairs, exact_rows
            if self._out is None or len(self._out) < len(q32):
                self._out = torch.empty((len(q32), self.c32t.shape[1]), dtype=torch.float32)
            s = self._out[: len(q32)]
            np.matmul(q32.numpy(), self.c32t.numpy(), out=s.numpy())
            return s, self.eps[start:end], exact_pairs, exact_rows
        return q @ self.ct, None, exact_pairs, exact_rows


def _order_rows(e: torch.Tensor, pos: torch.Tensor, key=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row of ``(e, pos)`` by ``e`` descending, then tie rank (default ``pos``) ascending."""
    o = torch.sort(pos if key is None else key[pos], dim=1).indices
    e, o2 = torch.sort(e.gather(1, o), dim=1, descending=True, stable=True)
    return pos.gather(1, o).gather(1, o2), e


@functools.lru_cache(maxsize=None)
def _pool(threads: int) -> ThreadPoolExecutor:
    """One lasting pool per thread count (starting threads per chunk cost ~10 ms each on a loaded machine)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="cti-topk")


def _kernel_ok(s: torch.Tensor, jit: bool) -> bool:
    return jit and s.device.type == "cpu" and s.dtype in (torch.float32, torch.float64)


def _float_topk(s: torch.Tensor, big: int, jit: bool, key: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(s, big, dim=1)``: the ``big`` best scores of each row and their columns, best
    first (the order among equal scores is unspecified, as there). With ``jit``, on CPU float rows
    (:func:`_kernel_ok`), by :func:`cti_repro.evaluation.select_jit.topk_rows` (one pass, several
    times faster; NaN raises), and then equal scores are in ``key`` order (None: column order)."""
    if _kernel_ok(s, jit):
        a, kn = s.numpy(), None if key is None else key.numpy()
        parts = min(torch.get_num_threads(), len(a) // 64)  # the kernel releases the GIL: rows split over threads
        if parts > 1:
            cut = np.linspace(0, len(a), parts + 1).astype(int)
            ti = np.concatenate(list(_pool(parts).map(lambda i: select_jit.topk_rows(a[cut[i] : cut[i + 1]], big, kn),
                                                      range(parts))))
        else:
            ti = select_jit.topk_rows(a, big, kn)
        return torch.from_numpy(np.take_along_axis(a, ti, 1)), torch.from_numpy(ti)
    return torch.topk(s, big, dim=1)


def use_jit(n_scores: int) -> bool:
    """Whether a ranking over ``n_scores`` scores in all takes numba's kernel (large enough to pay
    for loading it, and numba installed)."""
    return n_scores >= select_jit.MIN_SCORES and select_jit.available()


def _topk_core(s, k: int, eps, exact_pairs, exact_rows, values: bool = True, key=None, order=None,
               jit: bool = False):
    """Exact top-k (score desc, then tie rank asc) of each row of ``s`` [B, N] -> (positions, scores).

    ``eps`` None: ``s`` is exact. Else ``|s - exact| <= eps`` [B, 1]: rows whose k + 1 best scores
    are > 2 eps apart are in exact order already; others are rescored over the k + margin best.
    Rows with more than the margin within 2 eps of the k-th score are redone from exact full rows.
    ``key``: tie rank of each column (None: column order); ``order = argsort(key)``. ``jit``: see
    :func:`_float_topk` (the same result: only the order among equal float scores can differ, and
    rows with near-ties are ordered exactly anyway).
    """
    b, n = s.shape
    if eps is None and _kernel_ok(s, jit):  # exact scores: the kernel's order (score desc, tie rank asc) is final
        tv, ti = _float_topk(s, k, jit, key)
        return ti, tv
    big = min(n, k + _MARGIN)
    tv, ti = _float_topk(s, big, jit)
    if eps is None and s.is_floating_point() and torch.isnan(tv[:, 0]).any():  # topk ranks NaN first
        raise ValueError("NaN in the score matrix")
    lo = tv[:, k - 1 : k] if eps is None else tv[:, k - 1 : k] - 2 * eps
    ok = (tv[:, -1:] < lo).squeeze(1) if big < n else torch.ones(b, dtype=torch.bool, device=s.device)
    if eps is None:
        pos, vals = _order_rows(tv, ti, key)
    else:
        fuzzy = ((tv[:, :-1] - tv[:, 1:])[:, :k] <= 2 * eps).any(1)
        pos, vals = ti.clone(), tv.double()
        if fuzzy.any():
            f = fuzzy.nonzero()[:, 0]
            e = exact_pairs(f[:, None].expand(len(f), big).reshape(-1), ti[f].reshape(-1)).view(len(f), big)
            pos[f], vals[f] = _order_rows(e, ti[f], key)
        if values and not fuzzy.all():  # exact scores of the clean rows' top k
            c = (~fuzzy).nonzero()[:, 0]
            vals[c, :k] = exact_pairs(c[:, None].expand(len(c), k).reshape(-1), pos[c, :k].reshape(-1)).view(len(c), k)
    pos, vals = pos[:, :k].contiguous(), vals[:, :k].contiguous()
    bad = (~ok).nonzero()[:, 0]
    if len(bad):
        full = exact_rows(bad)
        bp, bv = _topk_exact(full if order is None else full[:, order], k)
        pos[bad], vals[bad] = (bp if order is None else order[bp]), bv.to(vals.dtype)
    return pos, vals


def rank(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    tie_key: Any | None = None,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
    normalize: bool = True,
    prefilter: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k candidates of each query by cosine similarity (or dot product).

    Scores are built ``chunk_size`` query rows at a time (memory ``chunk_size x N``), in fixed
    point, so the result does not depend on ``chunk_size``, the device or ``prefilter``.

    Args:
        queries, candidates: ``[Q, d]`` / ``[N, d]`` embeddings (numpy arrays are accepted too).
        k: ranking depth; clipped to N.
        tie_key: ``[N]`` sortable keys (e.g. the rank of each product id in ascending id order);
            default: the candidate index.
        chunk_size: query rows per matrix product.
        device: where to multiply (e.g. ``"cuda"``); default: the queries' device.
        normalize: L2-normalise both sides (cosine similarity); otherwise raw dot products up to
            one global positive factor (``scores`` are then ``q . c`` times a power of two).
        prefilter: score in float32 and rescore near-ties exactly (True) or score all in float64
            (False); default: float32 when its error bound holds and ``16 (k + 6) <= N``.

    Returns:
        ``(indices [Q, min(k, N)] int64, scores [Q, min(k, N)] float64)`` on the CPU; indices
        point into ``candidates``; scores are the (quantised) cosines.

    Raises:
        ValueError: bad shapes, ``k < 1``, or non-finite embeddings.
    """
    _check_k(k)
    _check_chunk(chunk_size)
    queries, candidates = torch.as_tensor(queries), torch.as_tensor(candidates)
    device = torch.device(device) if device is not None else queries.device
    n_q, n_c = queries.shape[0], candidates.shape[0]
    k = min(int(k), n_c)
    order = torch.from_numpy(_tie_order(tie_key, n_c))
    scorer = _Scorer(queries, candidates, order, normalize, device, prefilter, k + _MARGIN)
    if n_q == 0 or k == 0:
        return torch.zeros((n_q, k), dtype=torch.int64), torch.zeros((n_q, k), dtype=torch.float64)
    order_dev, unit = order.to(device), 2.0 ** (-2 * FIXED_POINT_BITS)
    idx_out, val_out = [], []
    jit = use_jit(n_q * n_c)
    for start in range(0, n_q, chunk_size):
        s, eps, exact_pairs, exact_rows = scorer.chunk(start, min(start + chunk_size, n_q))
        pos, vals = _topk_core(s, k, eps, exact_pairs, exact_rows, jit=jit)
        idx_out.append(order_dev[pos].cpu())
        val_out.append(vals.cpu() * unit)  # exact: a power of two
    return torch.cat(idx_out), torch.cat(val_out)


def _score_chunks(scores: Any, chunk_size: int, device: torch.device):
    """Yield ``(start, end, chunk on device)`` of a (dense or scipy sparse) score matrix."""
    for start in range(0, scores.shape[0], chunk_size):
        s = scores[start : start + chunk_size]
        yield start, start + s.shape[0], (torch.from_numpy(s.toarray()) if hasattr(s, "toarray") else s).to(device)


def _as_scores(scores: Any, device) -> tuple[Any, torch.device]:
    """Dense scores as a tensor; scipy sparse ones (e.g. BM25's) stay sparse, densified per chunk."""
    scores = scores.tocsr() if hasattr(scores, "tocsr") else torch.as_tensor(scores)
    if len(scores.shape) != 2:
        raise ValueError(f"scores must have shape [Q, N], got {tuple(scores.shape)}")
    return scores, torch.device(device) if device is not None else getattr(scores, "device", torch.device("cpu"))


def rank_scores(
    scores: torch.Tensor,
    k: int,
    tie_key: Any | None = None,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of a precomputed score matrix (e.g. BM25), with the same tie rule as :func:`rank`.

    ``scores``: ``[Q, N]``, higher is better (numpy or scipy sparse accepted), no NaN; ``k`` is clipped to N;
    ``tie_key`` defaults to the column index; ``chunk_size`` rows at a time on ``device`` (default:
    the scores' device). Returns ``(indices [Q, min(k, N)] int64, scores [Q, min(k, N)])`` on the
    CPU, in the input dtype.
    """
    _check_k(k)
    _check_chunk(chunk_size)
    scores, device = _as_scores(scores, device)
    n_q, n_c = scores.shape
    k = min(int(k), n_c)
    if n_q == 0 or k == 0:
        dtype = scores.dtype if isinstance(scores, torch.Tensor) else torch.float64
        return torch.zeros((n_q, k), dtype=torch.int64), torch.zeros((n_q, k), dtype=dtype)
    order = torch.from_numpy(_tie_order(tie_key, n_c)).to(device)
    key = _tie_rank(order)
    jit = use_jit(n_q * n_c)
    out = [_topk_core(s, k, None, None, lambda rows, s=s: s[rows], key=key, order=order, jit=jit)
           for _, _, s in _score_chunks(scores, chunk_size, device)]
    return torch.cat([p.cpu() for p, _ in out]), torch.cat([v.cpu() for _, v in out])


def label_codes(query_labels: Any, candidate_labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer codes of labels over one shared vocabulary (labels are equal iff their strings are).

    Args:
        query_labels: ``[Q]`` labels.
        candidate_labels: ``[N]`` labels.

    Returns:
        ``(query_codes [Q], candidate_codes [N], n_rel [Q])`` where ``n_rel[q]`` counts the
        candidates whose label equals query ``q``'s label.
    """
    q, c = np.asarray(query_labels), np.asarray(candidate_labels)
    # Integer arrays compare as they are (as strings they would compare the same; converting costs more
    # than the ranking); anything else, or a mix that numpy would promote to float, as strings.
    if not (q.dtype.kind in "iu" and c.dtype.kind in "iu" and np.result_type(q, c).kind in "iu"):
        q, c = q.astype(object).astype(str), c.astype(object).astype(str)
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


__all__ = ["rank", "rank_scores", "label_codes", "required_depth", "prefilter_available", "FIXED_POINT_BITS"]
