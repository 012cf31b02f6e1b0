"""Retrieval metrics of the paper (P@k, MAP@k, R-precision) and a TREC-file evaluator.

Every metric takes a *ranked relevance matrix* ``rel`` of shape ``[Q, depth]`` (``rel[q, i]`` is
true iff the item at rank ``i + 1`` of query ``q`` is relevant) and, where needed, ``n_rel`` of
shape ``[Q]`` (``R``: the number of items relevant to each query in the whole candidate set). The
functions are vectorised over queries and accept numpy arrays or torch tensors (the torch path
stays on the tensor's device, so it can run on a GPU); they return fractions in ``[0, 1]`` with the
same array type. :func:`compute_metrics` bundles the paper's six metrics in percent.

AP@k normalisation (PAPER_NOTES section 3, ambiguity row 7): the default ``norm="hits"`` divides by
the number of relevant items in the top k, the only definition consistent with the published
tables. ``"min_k_R"`` and ``"R"`` (trec_eval ``map_cut``) are available for comparison.

Ranks missing from a ranking (depth < k, or depth < R) count as non-relevant, as in trec_eval.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

try:  # torch is optional here: the numpy path must work without it.
    import torch
except ImportError:  # pragma: no cover - torch is a hard dependency of the package
    torch = None  # type: ignore[assignment]

METRICS: tuple[str, ...] = ("P@1", "P@5", "P@10", "MAP@5", "MAP@10", "R-precision")
AP_NORMS: tuple[str, ...] = ("hits", "min_k_R", "R")

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

    The ranking should be at least ``max(R)`` deep (see :func:`cti_repro.retrieval.required_depth`);
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


# ---- TREC files --------------------------------------------------------------------------------
def _read_lines(path: str | Path):
    """Yield ``(line_number, fields)`` of the non-blank lines of a text or gzip file."""
    path = Path(path)
    with open(path, "rb") as fh:
        is_gz = fh.read(2) == b"\x1f\x8b"  # sniff the magic number rather than trust the suffix
    opener = gzip.open if is_gz else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if fields:
                yield lineno, fields


def read_qrels(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read TREC qrels (``qid iter docid rel``; the iteration column is ignored).

    Args:
        path: qrels file (plain or gzip).

    Returns:
        ``(qids, docids, rels)``: string, string and float64 arrays, one entry per line.

    Raises:
        ValueError: naming the file and line for a wrong column count, a non-numeric
            relevance or a repeated (qid, docid) pair.
    """
    qids, docids, rels, seen = [], [], [], set()
    for lineno, f in _read_lines(path):
        if len(f) != 4:
            raise ValueError(f"{path}:{lineno}: expected 4 columns 'qid 0 docid rel', got {len(f)}")
        try:
            rel = float(f[3])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: relevance {f[3]!r} is not a number") from None
        if (f[0], f[2]) in seen:
            raise ValueError(f"{path}:{lineno}: repeated judgement for query {f[0]!r}, doc {f[2]!r}")
        seen.add((f[0], f[2]))
        qids.append(f[0])
        docids.append(f[2])
        rels.append(rel)
    return np.array(qids, dtype=str), np.array(docids, dtype=str), np.array(rels, dtype=np.float64)


def read_run(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a TREC run (``qid Q0 docid rank score tag``; Q0, rank and tag are ignored).

    Args:
        path: run file (plain or gzip).

    Returns:
        ``(qids, docids, scores)``: string, string and float64 arrays, one entry per line.

    Raises:
        ValueError: naming the file and line for a wrong column count, a non-numeric or
            non-finite score, or a document listed twice for one query.
    """
    qids, docids, scores, seen = [], [], [], set()
    for lineno, f in _read_lines(path):
        if len(f) != 6:
            raise ValueError(
                f"{path}:{lineno}: expected 6 columns 'qid Q0 docid rank score tag', got {len(f)}"
            )
        try:
            score = float(f[4])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: score {f[4]!r} is not a number") from None
        if not np.isfinite(score):
            raise ValueError(f"{path}:{lineno}: score {f[4]!r} is not finite")
        if (f[0], f[2]) in seen:
            raise ValueError(f"{path}:{lineno}: doc {f[2]!r} listed twice for query {f[0]!r}")
        seen.add((f[0], f[2]))
        qids.append(f[0])
        docids.append(f[2])
        scores.append(score)
    return np.array(qids, dtype=str), np.array(docids, dtype=str), np.array(scores, dtype=np.float64)


def ranked_relevance(
    qrels: tuple[np.ndarray, np.ndarray, np.ndarray],
    run: tuple[np.ndarray, np.ndarray, np.ndarray],
    depth: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranked relevance matrix of a run against qrels (vectorised, no per-query loop).

    The evaluated queries are the qrels' queries with at least one relevant item (rel > 0),
    sorted by qid. Each query's run lines are ranked by score descending, then docid ascending
    (string order; the rank column is ignored). Queries absent from the run get an all-zero row.
    Run queries absent from the qrels are ignored.

    Args:
        qrels: ``(qids, docids, rels)`` as from :func:`read_qrels`.
        run: ``(qids, docids, scores)`` as from :func:`read_run`.
        depth: ranks to keep; default ``max(10, max R)`` (enough for P@10 and exact R-precision).

    Returns:
        ``(query_ids [Q], rel bool [Q, depth], n_rel int64 [Q])``.
    """
    q_qid, q_doc, q_rel = qrels
    r_qid, r_doc, r_score = run
    is_rel = q_rel > 0
    queries, n_rel = np.unique(q_qid[is_rel], return_counts=True)
    if depth is None:
        depth = max(10, int(n_rel.max(initial=0)))
    rel = np.zeros((len(queries), depth), dtype=bool)
    if len(queries) == 0 or len(r_qid) == 0:
        return queries, rel, n_rel.astype(np.int64)

    # Integer codes: docids share one sorted vocabulary, so code order == string order.
    docs, doc_codes = np.unique(np.concatenate([q_doc[is_rel], r_doc]), return_inverse=True)
    rel_doc, run_doc = doc_codes[: int(is_rel.sum())], doc_codes[int(is_rel.sum()) :]
    rel_q = np.searchsorted(queries, q_qid[is_rel])
    run_q = np.searchsorted(queries, r_qid).clip(max=len(queries) - 1)
    keep = queries[run_q] == r_qid  # drop run lines of queries that are not evaluated
    run_q, run_doc, score = run_q[keep], run_doc[keep], r_score[keep]

    # Sort by query, then score descending, then docid ascending (lexsort: last key is primary).
    order = np.lexsort((run_doc, -score, run_q))
    run_q, run_doc = run_q[order], run_doc[order]
    starts = np.searchsorted(run_q, np.arange(len(queries)))
    pos = np.arange(len(run_q)) - starts[run_q]
    n_docs = np.int64(len(docs))
    hit = np.isin(run_q.astype(np.int64) * n_docs + run_doc, rel_q.astype(np.int64) * n_docs + rel_doc)
    inside = pos < depth
    rel[run_q[inside], pos[inside]] = hit[inside]
    return queries, rel, n_rel.astype(np.int64)


def evaluate_trec(qrels_path: str | Path, run_path: str | Path, ap_norm: str = "hits") -> dict[str, float]:
    """Evaluate a TREC run file against a TREC qrels file.

    Means are taken over the qrels' queries with at least one relevant item; a query with no run
    lines scores 0 on every metric. Ties in score are broken by docid ascending.

    Args:
        qrels_path: qrels file ``qid 0 docid rel`` (rel > 0 is relevant), plain or gzip.
        run_path: run file ``qid Q0 docid rank score tag``, plain or gzip.
        ap_norm: AP@k normaliser, see :func:`average_precision_at_k`.

    Returns:
        ``{"P@1", "P@5", "P@10", "MAP@5", "MAP@10", "R-precision"}`` means in percent.

    Raises:
        ValueError: a malformed line (file and line number in the message), or qrels without any
            relevant item.
    """
    if ap_norm not in AP_NORMS:
        raise ValueError(f"unknown AP normalisation {ap_norm!r}; expected one of {AP_NORMS}")
    qrels = read_qrels(qrels_path)
    run = read_run(run_path)
    queries, rel, n_rel = ranked_relevance(qrels, run)
    if len(queries) == 0:
        raise ValueError(f"{qrels_path}: no query has a relevant item")
    return mean_metrics(compute_metrics(rel, n_rel, ap_norm))
