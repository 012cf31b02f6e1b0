"""Evaluate a TREC run against TREC qrels with the paper's metrics (``cti-repro eval``).

Which queries are averaged (``queries=``), checked against ``trec_eval`` 10's sources
(``trec_eval.c``, ``meas_avg.c``, ``m_P.c``, ``m_map_cut.c``, ``m_Rprec.c``) and its test suite
(``tests/evaluation/fixtures/trec_eval``):

- ``"qrels"`` (default) = ``trec_eval -c``: every query of the qrels counts, in the mean's
  denominator too. A query absent from the run scores 0 (trec_eval ranks one unjudged document
  for it), and so does a query judged with no relevant document (P@k has nothing to count,
  map_cut and Rprec are 0 for R = 0).
- ``"run"`` = ``trec_eval`` without ``-c`` (version 9; version 10 exits with an error when a
  qrels query is missing from the run): the queries in both files.
- ``"relevant"``: the qrels' queries with at least one relevant item (this command's rule before).

Run queries absent from the qrels are ignored in every mode. A document is relevant when its
relevance is > 0 (trec_eval: ``atol(rel) >= 1``, the same for integer judgements).

Memory grows with the files' sizes: ids are interned (:mod:`cti_repro.evaluation.trec_read`),
and the ranked relevance matrix the metrics need is built in blocks of at most
:data:`BLOCK_CELLS` cells (plus one query's depth), never as one [queries x largest R] matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cti_repro.evaluation.metrics import compute_metrics
from cti_repro.evaluation.trec_read import IdTable, TrecLines, read_qrels, read_run
from cti_repro.study import AP_NORMS

QUERY_SETS = ("qrels", "run", "relevant")
"""Which queries are averaged: see the module docstring."""
BLOCK_CELLS = 1 << 18
"""Cells of one block of the ranked relevance matrix (bounds the metrics' working memory)."""
MIN_DEPTH = 10
"""Ranks every query keeps: enough for P@10 and MAP@10 (R-precision needs R)."""
FEW_SHARED = 0.5
"""Warn when fewer than this share of the evaluated queries appear in the run."""


@dataclass(frozen=True)
class TrecEvaluation:
    """The result of :func:`evaluate_trec_files`.

    ``query_ids`` are the evaluated queries in string order (trec_eval's order); ``per_query``
    maps each metric name to a ``[Q]`` array in percent (same order); ``means`` are their means;
    ``notes`` are warnings for the user, one line each.
    """

    query_ids: list[str]
    per_query: dict[str, np.ndarray]
    means: dict[str, float]
    notes: list[str] = field(default_factory=list)


def _evaluated_queries(qrels: TrecLines, run: TrecLines, queries: IdTable, which: str) -> np.ndarray:
    """Codes of the evaluated queries, in string order."""
    judged = np.unique(qrels.query)
    if which == "relevant":
        judged = np.unique(qrels.query[qrels.value > 0])
    elif which == "run":
        judged = np.intersect1d(judged, np.unique(run.query))
    return judged[np.argsort(queries.string_order()[judged], kind="stable")]


def _ranked_hits(qrels: TrecLines, run: TrecLines, index: np.ndarray, docs: IdTable
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each evaluated run line's ``(query index, rank - 1, is relevant)``.

    Lines are ranked per query by score descending, then docid *descending* (string order; the
    rank column is ignored): trec_eval's rule (``form_res_rels.c`` sorts ties by docno,
    reversed), so ties score as ``trec_eval`` / ``pytrec_eval`` score them.
    """
    q = index[run.query]
    keep = q >= 0  # run queries absent from the evaluated set are ignored
    q, doc, score = q[keep], run.doc[keep], run.value[keep]
    order = np.lexsort((-docs.string_order()[doc], -score, q))  # last key is the primary one
    q, doc = q[order], doc[order]
    pos = np.arange(len(q)) - np.searchsorted(q, q, side="left")
    n_docs = np.int64(len(docs))
    relevant = qrels.value > 0
    rel_keys = qrels.query[relevant] * n_docs + qrels.doc[relevant]
    hit = np.isin(run.query[keep][order] * n_docs + doc, rel_keys)
    return q, pos, hit


def _blocks(depth: np.ndarray) -> list[np.ndarray]:
    """Query indices grouped so that rows x the block's largest depth stays <= BLOCK_CELLS."""
    by_depth = np.argsort(depth, kind="stable")
    sorted_depth = depth[by_depth].tolist()  # Python ints: this loop runs once per query
    blocks, start = [], 0
    for i in range(1, len(by_depth) + 1):
        if i == len(by_depth) or (i + 1 - start) * sorted_depth[i] > BLOCK_CELLS:
            blocks.append(by_depth[start:i])
            start = i
    return blocks


def per_query_metrics(q: np.ndarray, pos: np.ndarray, hit: np.ndarray, n_rel: np.ndarray,
                      ap_norm: str) -> dict[str, np.ndarray]:
    """The paper's metrics per query (percent) from ranked run lines, block by block.

    Args:
        q, pos, hit: each run line's query index, 0-based rank and relevance (as from the ranking).
        n_rel: ``[Q]`` relevant items per query (R).
        ap_norm: AP@k normaliser, see :func:`cti_repro.evaluation.metrics.average_precision_at_k`.

    Returns:
        ``{metric: [Q] float64}`` as :func:`cti_repro.evaluation.metrics.compute_metrics` gives
        for the whole [Q x max(10, max R)] matrix, without building it.
    """
    depth = np.maximum(MIN_DEPTH, n_rel)
    inside = hit & (pos < depth[q])  # only hits within a query's depth are ever read
    q, pos = q[inside], pos[inside]
    row, block_of = np.empty(len(n_rel), dtype=np.int64), np.empty(len(n_rel), dtype=np.int64)
    blocks = _blocks(depth)
    for b, rows in enumerate(blocks):
        row[rows], block_of[rows] = np.arange(len(rows)), b
    line_order = np.argsort(block_of[q], kind="stable")
    bounds = np.searchsorted(block_of[q][line_order], np.arange(len(blocks) + 1))
    out: dict[str, np.ndarray] = {}
    for b, rows in enumerate(blocks):
        lines = line_order[bounds[b]:bounds[b + 1]]
        rel = np.zeros((len(rows), int(depth[rows].max())), dtype=bool)
        rel[row[q[lines]], pos[lines]] = True
        for name, values in compute_metrics(rel, n_rel[rows], ap_norm).items():
            out.setdefault(name, np.zeros(len(n_rel)))[rows] = values
    return out


def _coverage_note(qrels_path: str | Path, run_path: str | Path, shared: int, total: int, which: str) -> list[str]:
    """A one-line warning when few of the ``total`` queries the qrels offer have run lines.

    ``total`` counts the qrels queries of the rule (for ``"run"``: all of them). Those without run
    lines score 0 (``"qrels"``, ``"relevant"``) or silently drop out of the mean (``"run"``).
    """
    if shared >= FEW_SHARED * total:
        return []
    outcome = "are left out of the mean" if which == "run" else "score 0"
    if shared == 0:
        return [f"{run_path}: none of the {total} evaluated queries of {qrels_path} appears in the run: "
                "every measure is 0 (check the query ids)"]
    return [f"{run_path}: only {shared} of the {total} evaluated queries of {qrels_path} appear in the run; "
            f"the others {outcome}"]


def evaluate_trec_files(qrels_path: str | Path, run_path: str | Path, ap_norm: str = "hits",
                        queries: str = "qrels") -> TrecEvaluation:
    """Evaluate a TREC run file against a TREC qrels file, per query and on average.

    Args:
        qrels_path: qrels file ``qid 0 docid rel`` (rel > 0 is relevant), plain or gzip.
        run_path: run file ``qid Q0 docid rank score tag``, plain or gzip.
        ap_norm: AP@k normaliser, see :func:`cti_repro.evaluation.metrics.average_precision_at_k`.
        queries: which queries are averaged, one of :data:`QUERY_SETS` (module docstring).

    Returns:
        A :class:`TrecEvaluation` with ``{"P@1", "P@5", "P@10", "MAP@5", "MAP@10", "R-precision"}``
        in percent.

    Raises:
        ValueError: a malformed line (file and line number in the message), qrels without any
            relevant item, or (``queries="run"``) no query shared by the two files.
    """
    if ap_norm not in AP_NORMS:
        raise ValueError(f"unknown AP normalisation {ap_norm!r}; expected one of {AP_NORMS}")
    if queries not in QUERY_SETS:
        raise ValueError(f"unknown query set {queries!r}; expected one of {QUERY_SETS}")
    qids, docs = IdTable(), IdTable()
    qrels = read_qrels(qrels_path, qids, docs)
    run = read_run(run_path, qids, docs)
    if not (qrels.value > 0).any():
        raise ValueError(f"{qrels_path}: no query has a relevant item (relevance > 0)")
    evaluated = _evaluated_queries(qrels, run, qids, queries)
    if len(evaluated) == 0:
        raise ValueError(f"{run_path}: no query of the run is judged in {qrels_path}")
    index = np.full(len(qids), -1, dtype=np.int64)
    index[evaluated] = np.arange(len(evaluated))
    rel_q = index[qrels.query[qrels.value > 0]]
    n_rel = np.bincount(rel_q[rel_q >= 0], minlength=len(evaluated)).astype(np.int64)
    q, pos, hit = _ranked_hits(qrels, run, index, docs)
    per_query = per_query_metrics(q, pos, hit, n_rel, ap_norm)
    means = {name: float(v.mean()) for name, v in per_query.items()}
    shared = int(np.count_nonzero(np.bincount(q, minlength=len(evaluated))))
    offered = len(np.unique(qrels.query)) if queries == "run" else len(evaluated)
    return TrecEvaluation([qids.names[c] for c in evaluated], per_query, means,
                          _coverage_note(qrels_path, run_path, shared, offered, queries))


def evaluate_trec(qrels_path: str | Path, run_path: str | Path, ap_norm: str = "hits",
                  queries: str = "qrels") -> dict[str, float]:
    """Mean metrics of a TREC run (see :func:`evaluate_trec_files`, whose ``means`` this returns).

    Every query of the qrels counts by default (``trec_eval -c``): a query absent from the run,
    or judged with no relevant document, scores 0. Ties in score are broken by docid
    *descending* (string order), as trec_eval does; the rank column is ignored.
    """
    return evaluate_trec_files(qrels_path, run_path, ap_norm, queries).means
