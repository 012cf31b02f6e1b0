"""The paper's zero-shot baselines: BM25 over titles, MPNet (category vs title), CLIP (category vs image).

BM25 is Okapi BM25 exactly as ``rank_bm25.BM25Okapi`` computes it (including its floor for
negative idf values), written as one sparse matrix product so that all queries are scored at once:

.. math::

    \\mathrm{score}(q, d) = \\sum_{t \\in q} \\mathrm{idf}(t)\\,
        \\frac{f_{t,d}\\,(k_1 + 1)}{f_{t,d} + k_1 (1 - b + b\\,|d| / \\mathrm{avgdl})},
    \\qquad \\mathrm{idf}(t) = \\ln\\frac{N - n_t + 0.5}{n_t + 0.5}

with idf values below zero replaced by ``epsilon * mean(idf)``. A query term repeated in the
query counts once per occurrence, as in rank_bm25.
"""

from __future__ import annotations

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
        df = np.bincount(tf.indices, minlength=len(vocab)).astype(np.float64)
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        if len(idf):
            idf[idf < 0] = epsilon * idf.mean()
        self.idf = idf
        denom_doc = k1 * (1 - b + b * doc_len / avgdl) if avgdl > 0 else np.full(n_docs, k1)
        tf = tf.tocoo()
        w = idf[tf.col] * tf.data * (k1 + 1) / (tf.data + denom_doc[tf.row])
        self.weights = sp.csc_matrix((w, (tf.row, tf.col)), shape=(n_docs, len(vocab)))
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

    def score_matrix(self, queries: list[list[str]]) -> np.ndarray:
        """BM25 scores of every query against every document: dense [Q, N] float64."""
        return np.asarray((self.query_matrix(queries) @ self.weights.T).todense())


def bm25_scores(
    query_texts: list[str], doc_texts: list[str], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25,
) -> np.ndarray:
    """BM25 score matrix [Q, N] of category names against product titles."""
    bm25 = SparseBM25([tokenize(t) for t in doc_texts], k1=k1, b=b, epsilon=epsilon)
    return bm25.score_matrix([tokenize(q) for q in query_texts])


def cosine_scores(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix [Q, N] (zero vectors score 0)."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    c = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    return q @ c.T
