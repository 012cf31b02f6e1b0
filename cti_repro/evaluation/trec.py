"""TREC files: read qrels and runs, evaluate a run with the paper's metrics (``cti-repro eval``)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from cti_repro.evaluation.metrics import compute_metrics, mean_metrics
from cti_repro.study import AP_NORMS


def _read_lines(path: str | Path):
    """Yield ``(line_number, fields)`` of the non-blank lines of a text or gzip file."""
    path = Path(path)
    with open(path, "rb") as fh:
        is_gz = fh.read(2) == b"\x1f\x8b"  # sniff the magic number rather than trust the suffix
    opener = gzip.open if is_gz else open
    lineno = 0
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                fields = line.split()
                if fields:
                    yield lineno, fields
    except (EOFError, OSError, UnicodeDecodeError, zlib.error) as exc:  # truncated / fake gzip, not UTF-8
        raise ValueError(f"{path}:{lineno + 1}: cannot read ({type(exc).__name__}: {exc})") from None


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
    sorted by qid. Each query's run lines are ranked by score descending, then docid *descending*
    (string order; the rank column is ignored): trec_eval's rule (its ``form_res_rels`` sorts
    ties by docno, reversed), so ties score as ``trec_eval`` / ``pytrec_eval`` score them. Queries absent from the run get an all-zero row.
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

    # Sort by query, then score descending, then docid descending as trec_eval (lexsort: last key is primary).
    order = np.lexsort((-run_doc, -score, run_q))
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
    lines scores 0 on every metric. Ties in score are broken by docid descending (string order),
    trec_eval's rule (see :func:`ranked_relevance`).

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
