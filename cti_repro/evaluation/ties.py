"""Ties, made exact: the order of tied candidates and fixed-point scores (used by every ranker).

A ranking is score descending, then tie key ascending (:mod:`cti_repro.evaluation.ranking`). Two
things could make it depend on more than the key:

* ``torch.topk`` promises nothing about ties. So candidates are put in tie-key order (or each
  score column carries its tie rank); the k + 6 best columns of a row are sorted by (score desc,
  tie rank asc) with stable sorts, and a row whose tie at the k-th score reaches past them is
  redone by counting: every column scoring ``> t`` (the k-th score) is in, and of the columns
  scoring ``== t`` the leftmost fill the remaining slots (a cumulative count picks them).
* Floating-point matrix products are not reproducible bit for bit (kernels and summation orders
  change with shapes), so two identical candidate vectors can score 1e-16 apart. Scores are
  therefore in *fixed point*: both sides are L2-normalised (or, with ``normalize=False``, scaled by
  one power of two so every row norm is <= 1) in float64 on the CPU and rounded to integer
  multiples of 2**-26. Products and partial sums of such integers are integers below 2**53, so
  float64 products are exact in any order, on any device: chunked and unchunked, CPU and CUDA
  rankings are identical and duplicate vectors tie exactly. Scores are the integer dot products
  times 2**-52; the rounding moves a cosine by at most ``sqrt(d) * 2**-26`` (7e-7 for d = 2048).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

FIXED_POINT_BITS = 26  # coordinates become integer multiples of 2**-26; see the module docstring


def _tie_order(tie_key: Any | None, n: int) -> np.ndarray:
    """Candidate indices sorted by ``tie_key`` ascending (stable: equal keys keep index order)."""
    if tie_key is None:
        return np.arange(n, dtype=np.int64)
    key = tie_key.detach().cpu().numpy() if isinstance(tie_key, torch.Tensor) else np.asarray(tie_key)
    if key.shape != (n,):
        raise ValueError(f"tie_key must have shape [{n}], got {key.shape}")
    return np.argsort(key, kind="stable").astype(np.int64)


def _topk_exact(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k columns of each row of ``scores`` [B, N] (no NaN, ``1 <= k <= N``) by score
    descending, then column position ascending: ``(positions [B, k] int64, values [B, k])``."""
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


def _fixed_point(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Rows of ``x`` as float64 integers ``round(x_hat * 2**26)`` with ``||x_hat|| <= 1``.

    ``x_hat`` is the L2-normalised row (``normalize=True``) or ``x`` times one power of two that
    brings the largest row norm to <= 1 (a global scale: it cannot change any ranking).
    Computed on the CPU in float64 so the integers do not depend on the compute device.
    """
    x = x.detach().to(device="cpu", dtype=torch.float64)
    if not np.isfinite(x.numpy()).all():  # numpy: one single-threaded pass, no thread barrier
        raise ValueError("embeddings contain NaN or inf")
    if normalize:
        x = F.normalize(x, dim=1)  # a new tensor: the in-place steps below cannot touch the caller's
    else:
        top = float(x.norm(dim=1).max()) if len(x) else 0.0
        x = x * 2.0 ** -np.ceil(np.log2(top)) if top > 0 else x.clone()  # exact: a power of two
    return x.mul_(2.0**FIXED_POINT_BITS).round_()  # in place: no fresh pages for two more copies


def _tie_rank(order: torch.Tensor) -> torch.Tensor | None:
    """Tie rank of each column (the inverse of ``order``); None for the identity."""
    if order.device.type == "cpu":  # numpy: several times faster than torch for these small vectors
        o = order.numpy()
        if (o == np.arange(len(o))).all():
            return None
        key = np.empty_like(o)
        key[o] = np.arange(len(o))
        return torch.from_numpy(key)
    if bool((order == torch.arange(len(order), device=order.device)).all()):
        return None
    key = torch.empty_like(order)
    key[order] = torch.arange(len(order), device=order.device)
    return key


__all__ = ["FIXED_POINT_BITS"]  # the private helpers are imported by name by the rankers
