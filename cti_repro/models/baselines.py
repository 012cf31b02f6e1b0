"""The paper's zero-shot baselines: BM25 over titles, MPNet (category vs title), CLIP (category vs image).

BM25 is Okapi BM25 exactly as ``rank_bm25.BM25Okapi`` computes it (including its floor for
negative idf values), written as one sparse matrix product so that all queries are scored at once:

.. math::

    \\mathrm{score}(q, d) = \\sum_{t \\in q} \\mathrm{idf}(t)\\,
        \\frac{f_{t,d}\\,(k_1 + 1)}{f_{t,d} + k_1 (1 - b + b\\,|d| / \\mathrm{avgdl})},
    \\qquad \\mathrm{idf}(t) = \\ln\\frac{N - n_t + 0.5}{n_t + 0.5}

with idf values below zero replaced by ``epsilon * mean(idf)``. A query term repeated in the
query counts once per occurrence, as in rank_bm25.

The scores are bit-identical to ``BM25Okapi.get_scores``, not just close: idf uses ``math.log``
and a sequential mean in rank_bm25's vocabulary order, each term weight is evaluated with the same
operations in the same order, and a query's term weights are added one query position at a time
(one sparse row selection per position), i.e. in rank_bm25's summation order.
"""

from __future__ import annotations

import math
import re

import numpy as np
import scipy.sparse as sp

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric tokens (``"Coffee-Machines 2x"`` -> ``["coffee", "machines", "2x"]``)."""
    return _TOKEN.findall(text.lower())


class SparseBM25:
    """BM25Okapi over a fixed corpus, scoring many queries with one sparse product.

    Args:
        corpus: tokenised documents.
        k1, b, epsilon: rank_bm25's BM25Okapi parameters.

    Example:
        >>> bm25 = SparseBM25([tokenize(t) for t in titles])
        >>> scores = bm25.score_matrix([tokenize(q) for q in queries])   # [Q, N]
    """

    def __init__(self, corpus: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        self.k1, self.b, self.epsilon = k1, b, epsilon
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for d, doc in enumerate(corpus):
            for tok in doc:
                rows.append(d)
                cols.append(vocab.setdefault(tok, len(vocab)))
        self.vocab = vocab
        n_docs = len(corpus)
        # Duplicate (doc, term) entries are summed into term frequencies.
        tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_docs, len(vocab)))
        tf.sum_duplicates()
        doc_len = np.array([len(doc) for doc in corpus], dtype=np.float64)
        avgdl = doc_len.sum() / max(n_docs, 1)
        df = np.bincount(tf.indices, minlength=len(vocab))
        # math.log and a left-to-right sum, as rank_bm25 (numpy's log and pairwise mean can differ by an ulp)
        idf = np.array([math.log(n_docs - int(f) + 0.5) - math.log(int(f) + 0.5) for f in df], dtype=np.float64)
        if len(idf):
            total = 0.0
            for v in idf.tolist():
                total += v
            idf[idf < 0] = epsilon * (total / len(idf))
        self.idf = idf
        denom_doc = k1 * (1 - b + b * doc_len / avgdl) if avgdl > 0 else np.full(n_docs, k1)
        tf = tf.tocoo()
        w = idf[tf.col] * (tf.data * (k1 + 1) / (tf.data + denom_doc[tf.row]))
        self.weights = sp.csc_matrix((w, (tf.row, tf.col)), shape=(n_docs, len(vocab)))
        self._weights_t = self.weights.T.tocsr()  # [V, N]: row t holds term t's weight in every doc
        self.n_docs = n_docs

    def query_matrix(self, queries: list[list[str]]) -> sp.csr_matrix:
        """Term counts of each query over the corpus vocabulary (unknown terms score 0)."""
        rows, cols = [], []
        for q, toks in enumerate(queries):
            for tok in toks:
                j = self.vocab.get(tok)
                if j is not None:
                    rows.append(q)
                    cols.append(j)
        m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self.vocab)))
        m.sum_duplicates()
        return m

    def score_sparse(self, queries: list[list[str]]) -> sp.csr_matrix:
        """BM25 scores as a sparse [Q, N] matrix (a document sharing no term with a query scores 0).

        Term weights are added one query position at a time: the same additions, in the same
        order, as ``BM25Okapi.get_scores`` (so the scores are bit-identical).
        """
        ids = [[self.vocab[t] for t in toks if t in self.vocab] for toks in queries]
        out = sp.csr_matrix((len(queries), self.n_docs), dtype=np.float64)
        for j in range(max((len(i) for i in ids), default=0)):
            rows = np.array([q for q, i in enumerate(ids) if len(i) > j], dtype=np.int64)
            cols = np.array([ids[q][j] for q in rows], dtype=np.int64)
            pick = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self.vocab)))
            out = out + pick @ self._weights_t  # one term per row: 1.0 * w is exact
        return out

    def score_matrix(self, queries: list[list[str]]) -> np.ndarray:
        """BM25 scores of every query against every document: dense [Q, N] float64."""
        return self.score_sparse(queries).toarray()


def bm25_scores(
    query_texts: list[str], doc_texts: list[str], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25,
    sparse: bool = False,
) -> np.ndarray | sp.csr_matrix:
    """BM25 score matrix [Q, N] of category names against product titles.

    Args:
        query_texts: the queries (category names), tokenised by :func:`tokenize`.
        doc_texts: the documents (product titles).
        k1, b, epsilon: rank_bm25's ``BM25Okapi`` parameters.
        sparse: return the scipy CSR matrix (documents sharing no term with a query are absent,
            i.e. score 0) instead of a dense array; the pipeline ranks it chunk by chunk.

    Returns:
        ``[Q, N]`` float64 scores, bit-identical to ``BM25Okapi.get_scores`` row by row.
    """
    bm25 = SparseBM25([tokenize(t) for t in doc_texts], k1=k1, b=b, epsilon=epsilon)
    queries = [tokenize(q) for q in query_texts]
    return bm25.score_sparse(queries) if sparse else bm25.score_matrix(queries)
