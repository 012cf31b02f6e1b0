"""Retrieval metrics of the paper: P@k, MAP@k, R-precision (TREC files: :mod:`cti_repro.evaluation.trec`).

Every metric takes a *ranked relevance matrix* ``rel`` of shape ``[Q, depth]`` (``rel[q, i]`` is
true iff the item at rank ``i + 1`` of query ``q`` is relevant) and, where needed, ``n_rel`` of
shape ``[Q]`` (``R``: the number of items relevant to each query in the whole candidate set). The
functions are vectorised over queries and accept numpy arrays or torch tensors (the torch path
stays on the tensor's device, so it can run on a GPU); they return fractions in ``[0, 1]`` with the
same array type. :func:`compute_metrics` bundles the paper's six metrics in percent.

AP@k normalisation (``book/deviations.md`` row 7): the default ``norm="hits"`` divides by
the number of relevant items in the top k, the only definition consistent with the published
tables. ``"min_k_R"`` and ``"R"`` (trec_eval ``map_cut``) are available for comparison.

Ranks missing from a ranking (depth < k, or depth < R) count as non-relevant, as in trec_eval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # torch is optional here: the numpy path must work without it.
    import torch
except ImportError:  # pragma: no cover - torch is a hard dependency of the package
    torch = None  # type: ignore[assignment]

from cti_repro.study import AP_NORMS

Array = Any  # np.ndarray | torch.Tensor


# ---- backend helpers ---------------------------------------------------------------------------
def _is_torch(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def _as_rel(rel: Array) -> Array:
    """``rel`` as a float64 matrix of the same backend (0/1 values)."""
    if _is_torch(rel):
        r = rel.to(torch.float64)
    else:
        r = np.asarray(rel).astype(np.float64)
    if r.ndim != 2:
        raise ValueError(f"rel must have shape [Q, depth], got {tuple(r.shape)}")
    return r


def _as_n_rel(n_rel: Array | None, r: Array, name: str) -> Array:
    """``n_rel`` as a float64 vector on ``r``'s backend, checked against ``r``."""
    if n_rel is None:
        raise ValueError(f"{name} needs n_rel (the number of relevant items per query)")
    if _is_torch(r):
        n = torch.as_tensor(n_rel, device=r.device).to(torch.float64)
    else:
        n = (n_rel.cpu().numpy() if _is_torch(n_rel) else np.asarray(n_rel)).astype(np.float64)
    if tuple(n.shape) != (r.shape[0],):
        raise ValueError(f"n_rel must have shape [{r.shape[0]}], got {tuple(n.shape)}")
    # A ranking cannot hold more relevant items than exist; this catches duplicates and mix-ups.
    if bool((n < 0).any()) or bool((r.sum(1) > n).any()):
        raise ValueError("n_rel must be >= 0 and >= the number of relevant items in each ranking")
    return n


def _arange(r: Array, n: int, start: int = 0) -> Array:
    if _is_torch(r):
        return torch.arange(start, start + n, device=r.device, dtype=torch.float64)
    return np.arange(start, start + n, dtype=np.float64)


def _safe_div(num: Array, den: Array) -> Array:
    """``num / den`` with 0 where ``den == 0`` (then ``num`` is 0 as well)."""
    out = num / den.clip(min=1.0)  # den holds counts, so clipping at 1 only touches den == 0
    return out * (den > 0)


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _to_numpy(x: Array) -> np.ndarray:
    return x.detach().cpu().numpy() if _is_torch(x) else np.asarray(x)


# ---- metrics -----------------------------------------------------------------------------------
def precision_at_k(rel: Array, k: int) -> Array:
    r"""Precision at cut-off k.

    .. math:: P@k = \frac{1}{k} \sum_{i=1}^{k} rel_i

    Ranks beyond the ranking's depth count as non-relevant (the divisor stays k).

    Args:
        rel: ranked relevance matrix ``[Q, depth]`` (bool or 0/1), numpy or torch.
        k: cut-off (>= 1).

    Returns:
        ``[Q]`` float64 fractions, same backend as ``rel``.
    """
    _check_k(k)
    r = _as_rel(rel)
    return r[:, :k].sum(1) / float(k)


def average_precision_at_k(rel: Array, k: int, n_rel: Array | None = None, norm: str = "hits") -> Array:
    r"""Average precision at cut-off k, with a choice of normaliser Z.

    .. math:: AP@k = \frac{1}{Z} \sum_{i=1}^{k} P@i \cdot rel_i

    - ``norm="hits"`` (default, the paper's): :math:`Z = \sum_{i \le k} rel_i`, the number of
      relevant items retrieved in the top k (sklearn-style AP of the truncated list);
    - ``norm="min_k_R"``: :math:`Z = \min(k, R)`;
    - ``norm="R"`` (trec_eval ``map_cut_k``): :math:`Z = R`.

    AP@k = 0 when Z = 0 (nothing relevant retrieved, or R = 0).

    Args:
        rel: ranked relevance matrix ``[Q, depth]``.
        k: cut-off (>= 1).
        n_rel: ``[Q]`` number of relevant items R per query; required for ``min_k_R`` and ``R``.
        norm: one of :data:`AP_NORMS`.

    Returns:
        ``[Q]`` float64 fractions, same backend as ``rel``.
    """
    _check_k(k)
    if norm not in AP_NORMS:
        raise ValueError(f"unknown AP normalisation {norm!r}; expected one of {AP_NORMS}")
    r = _as_rel(rel)[:, :k]
    # P@i at each rank i, kept only where rel_i = 1.
    num = (r.cumsum(1) / _arange(r, r.shape[1], start=1) * r).sum(1)
    if norm == "hits":
        z = r.sum(1)
    else:
        n = _as_n_rel(n_rel, _as_rel(rel), "AP@k with norm=" + repr(norm))
        z = n.clip(max=float(k)) if norm == "min_k_R" else n
    return _safe_div(num, z)


def r_precision(rel: Array, n_rel: Array) -> Array:
    r"""R-precision: precision at rank R, R = number of relevant items of the query.

    .. math:: RP = \frac{1}{R} \sum_{i=1}^{R} rel_i

    The ranking should be at least ``max(R)`` deep (see :func:`cti_repro.evaluation.ranking.required_depth`);
    missing ranks count as non-relevant. RP = 0 when R = 0.

    Args:
        rel: ranked relevance matrix ``[Q, depth]``.
        n_rel: ``[Q]`` number of relevant items R per query.

    Returns:
        ``[Q]`` float64 fractions, same backend as ``rel``.
    """
    r = _as_rel(rel)
    n = _as_n_rel(n_rel, r, "R-precision")
    in_top_r = _arange(r, r.shape[1])[None, :] < n[:, None]
    return _safe_div((r * in_top_r).sum(1), n)


def compute_metrics(rel: Array, n_rel: Array, ap_norm: str = "hits") -> dict[str, np.ndarray]:
    """The paper's six metrics per query, in percent.

    Args:
        rel: ranked relevance matrix ``[Q, depth]`` (numpy or torch; depth >= max R for exact
            R-precision).
        n_rel: ``[Q]`` number of relevant items per query.
        ap_norm: AP@k normaliser, see :func:`average_precision_at_k`.

    Returns:
        ``{name: [Q] float64 numpy array}`` for the names in :data:`METRICS`, values in [0, 100].
    """
    out = {
        "P@1": precision_at_k(rel, 1),
        "P@5": precision_at_k(rel, 5),
        "P@10": precision_at_k(rel, 10),
        "MAP@5": average_precision_at_k(rel, 5, n_rel, ap_norm),
        "MAP@10": average_precision_at_k(rel, 10, n_rel, ap_norm),
        "R-precision": r_precision(rel, n_rel),
    }
    return {name: _to_numpy(v) * 100.0 for name, v in out.items()}


def mean_metrics(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean over queries of each metric (NaN for an empty query set).

    Args:
        per_query: output of :func:`compute_metrics`.

    Returns:
        ``{name: mean}`` with the same keys, as Python floats.
    """
    out = {}
    for name, v in per_query.items():
        a = _to_numpy(v).astype(np.float64)
        out[name] = float(a.mean()) if a.size else float("nan")
    return out
