import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from cti_repro.models.baselines import SparseBM25, bm25_scores, tokenize


def test_tokenize():
    assert tokenize("Coffee-Machines, 2x PRO!") == ["coffee", "machines", "2x", "pro"]


@pytest.mark.parametrize("k1,b,eps", [(1.5, 0.75, 0.25), (0.9, 0.4, 0.25), (1.2, 1.0, 0.5)])
def test_sparse_bm25_equals_rank_bm25(k1, b, eps):
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(60)]
    # A skewed vocabulary so some terms occur in more than half the docs (negative idf -> epsilon floor).
    p = np.r_[[0.3, 0.2], np.full(58, 0.5 / 58)]
    corpus = [list(rng.choice(vocab, size=rng.integers(1, 12), p=p)) for _ in range(200)]
    queries = [list(rng.choice(vocab, size=rng.integers(1, 4))) for _ in range(40)] + [["w0", "w0"], ["unknown"]]
    ref = BM25Okapi(corpus, k1=k1, b=b, epsilon=eps)
    expected = np.stack([ref.get_scores(q) for q in queries])
    got = SparseBM25(corpus, k1=k1, b=b, epsilon=eps).score_matrix(queries)
    np.testing.assert_array_equal(got, expected)  # bit-identical, as SparseBM25 claims
    np.testing.assert_array_equal(bm25_scores([" ".join(q) for q in queries], [" ".join(d) for d in corpus],
                                              k1, b, eps, sparse=True).toarray(), got)


def test_bm25_ranks_exact_title_match_first():
    titles = ["Red steel kettle 1.7 L", "Espresso machine with milk frother", "Coffee machines cleaning tablets",
              "Coffee Machines", "Running shoes for men"]
    scores = bm25_scores(["Coffee Machines"], titles)
    assert int(np.argmax(scores[0])) == 3
    assert scores[0, 4] == 0.0
