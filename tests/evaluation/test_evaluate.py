"""Fused evaluation (ranking + metrics in one pass) against the unfused path: bit-identical.

``evaluate_embeddings`` / ``evaluate_scores`` must give exactly what ranking to depth max R and
``evaluate_ranking`` give, with duplicates, near-ties closer than float32 resolves, heavy score
ties, dense / sparse / float32 scores, and on the GPU branch of the R-precision selection.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cti_repro.evaluation import select_jit
from cti_repro.evaluation.evaluate import evaluate_embeddings, evaluate_ranking, evaluate_scores
from cti_repro.evaluation.ranking import _float_topk, label_codes, rank, rank_scores, required_depth


needs_numba = pytest.mark.skipif(not select_jit.available(), reason="numba not installed")


def _brute(scores: np.ndarray, k: int, tie_key: np.ndarray) -> np.ndarray:
    idx = np.arange(scores.shape[1])
    return np.stack([np.lexsort((idx, tie_key, -row))[:k] for row in scores])


@pytest.mark.parametrize("jit", [False, pytest.param(True, marks=needs_numba)])
@pytest.mark.parametrize("chunk", [5, 64, 1000])
def test_prefilter_equals_exact_with_duplicates_and_near_ties(chunk, jit, monkeypatch):
    # jit: the float32 top-k by numba's kernel (select_jit) instead of torch.topk, as on large inputs
    monkeypatch.setattr(select_jit, "MIN_SCORES", 0 if jit else 1 << 62)
    rng = np.random.default_rng(chunk)
    base = rng.normal(size=(40, 16))
    c = base[rng.integers(0, 40, 600)]  # ~15 exact copies of each vector: bands wider than the margin
    c[::7] += 1e-9 * rng.normal(size=c[::7].shape)  # and near-ties closer than float32 can tell apart
    q = torch.from_numpy(rng.normal(size=(90, 16)))
    c = torch.from_numpy(c)
    tie_key = rng.permutation(600)
    for k in (1, 10, 37):
        a = rank(q, c, k, tie_key=tie_key, chunk_size=chunk, device="cpu", prefilter=True)
        b = rank(q, c, k, tie_key=tie_key, chunk_size=chunk, device="cpu", prefilter=False)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    labels = rng.integers(0, 8, 600)
    q_lab = rng.integers(0, 9, 90)
    _, _, n_rel = label_codes(q_lab, labels)
    idx, _ = rank(q, c, required_depth(n_rel), tie_key=tie_key, prefilter=False)
    for pf in (True, False):
        top, got = evaluate_embeddings(q, c, q_lab, labels, tie_key=tie_key, chunk_size=chunk, device="cpu",
                                       ap_norms=("hits", "R"), prefilter=pf)
        assert torch.equal(top, idx[:, :10])
        for norm in ("hits", "R"):
            want = evaluate_ranking(idx, q_lab, labels, norm)
            for m in want:
                np.testing.assert_array_equal(got[norm][m], want[m])


def test_r_precision_selection_gpu_branch(monkeypatch):
    # On CUDA the R-th score of deep rows comes from topk on rows grouped by R, on the CPU from
    # np.partition: force the CUDA branch and compare.
    import cti_repro.evaluation.evaluate as R

    rng = np.random.default_rng(11)
    q, c = torch.from_numpy(rng.normal(size=(70, 12))), torch.from_numpy(rng.normal(size=(900, 12)))
    labels = rng.integers(0, 4, 900)  # R ~ 225: every row needs the deep path
    q_lab = rng.integers(0, 5, 70)
    want = evaluate_embeddings(q, c, q_lab, labels, prefilter=True, chunk_size=16)
    monkeypatch.setattr(R, "_numpy_select", lambda t: False)
    got = evaluate_embeddings(q, c, q_lab, labels, prefilter=True, chunk_size=16)
    assert torch.equal(want[0], got[0])
    np.testing.assert_array_equal(want[1]["hits"]["R-precision"], got[1]["hits"]["R-precision"])
    s = rng.integers(0, 3, size=(40, 500)).astype(np.float32)  # heavy ties at the R-th score
    a = evaluate_scores(s, q_lab[:40], labels[:500], chunk_size=9)
    monkeypatch.undo()
    b = evaluate_scores(s, q_lab[:40], labels[:500], chunk_size=9)
    np.testing.assert_array_equal(a[1]["hits"]["R-precision"], b[1]["hits"]["R-precision"])


def test_scores_path_dense_sparse_and_ties():
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    s = rng.integers(0, 4, size=(60, 300)).astype(np.float64) * (rng.random((60, 300)) < 0.2)  # BM25-like zeros
    tie_key = rng.permutation(300)
    labels, q_lab = rng.integers(0, 5, 300), rng.integers(0, 6, 60)
    _, _, n_rel = label_codes(q_lab, labels)
    depth = required_depth(n_rel)
    want_idx = _brute(s, depth, tie_key)
    for scores in (s, torch.from_numpy(s).float(), sp.csr_matrix(s)):
        idx, _ = rank_scores(scores, depth, tie_key=tie_key, chunk_size=7, device="cpu")
        np.testing.assert_array_equal(idx.numpy(), want_idx)
        top, got = evaluate_scores(scores, q_lab, labels, tie_key=tie_key, chunk_size=11, device="cpu")
        np.testing.assert_array_equal(top.numpy(), want_idx[:, :10])
        want = evaluate_ranking(want_idx, q_lab, labels)
        for m in want:
            np.testing.assert_array_equal(got["hits"][m], want[m])



@pytest.mark.parametrize("path", ["numpy", "numba", "torch"])
def test_r_precision_counts_exactly_the_top_r_for_small_r_on_the_cpu_score_path(path, monkeypatch):
    """R < 10: R-precision's numerator is read from the top 10 and must stop at rank R (a query
    whose relevant items sit at ranks R + 1 .. 10 scores 0, not more); queries of every R <= 10,
    checked against a plain sort, on the numpy, numba and torch selections of CPU scores. The other
    tests use only queries with R > 10."""
    from cti_repro.evaluation import evaluate as ev
    from cti_repro.evaluation import select_jit

    if path == "numba" and not select_jit.available():
        pytest.skip("numba not installed")
    monkeypatch.setattr(select_jit, "MIN_SCORES", 0 if path == "numba" else 1 << 62)  # force / forbid the numba kernel
    rng = np.random.default_rng(5)
    n_cand, rs = 60, list(range(1, 11))
    labels = np.repeat(np.arange(len(rs) + 1), [*rs, 60 - sum(rs)])  # label i has R = i + 1; the last: filler
    queries = np.arange(len(rs))
    scores = rng.normal(size=(len(rs), n_cand))
    for q, r in enumerate(rs):  # ranks 2..R irrelevant, the other R - 1 relevant items right after rank R
        rel, irr = np.flatnonzero(labels == q), np.flatnonzero(labels != q)[: r - 1]
        scores[q, irr], scores[q, rel] = 10 + np.arange(r - 1, 0, -1), 5 + 0.1 * np.arange(r, 0, -1)
        scores[q, rel[0]] = 20  # one relevant item at rank 1: R-precision = 1 / R exactly (top R + 1: 2 / R)
    tie_key = np.arange(n_cand)
    given = torch.from_numpy(scores).bfloat16() if path == "torch" else scores  # bf16: torch's selection
    assert ev._numpy_select(torch.as_tensor(given)) == (path != "torch")
    _, out = evaluate_scores(given, queries, labels, tie_key=tie_key, chunk_size=4, device="cpu")
    top = _brute(scores, n_cand, tie_key)
    want = [(labels[top[q, :r]] == q).sum() / r * 100.0 for q, r in enumerate(rs)]
    np.testing.assert_array_equal(out["hits"]["R-precision"], want)
    np.testing.assert_array_equal(want, [1 / r * 100.0 for r in rs])


@needs_numba
def test_kernel_top_k_split_over_threads_equals_the_exact_path(monkeypatch):
    # Chunks of >= 128 rows run the float32 top-k kernel on row ranges in parallel threads.
    monkeypatch.setattr(select_jit, "MIN_SCORES", 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        rng = np.random.default_rng(8)
        c = torch.from_numpy(rng.normal(size=(700, 8)))
        c[100:200] = c[:100]  # duplicates: exact ties the tie key orders
        q = torch.from_numpy(rng.normal(size=(400, 8)))
        tie_key = rng.permutation(700)
        a = rank(q, c, 10, tie_key=tie_key, chunk_size=300, prefilter=True)
        b = rank(q, c, 10, tie_key=tie_key, chunk_size=300, prefilter=False)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        # the kernel's own output (rank() would repair a wrong candidate list by its exact fallback)
        s = torch.from_numpy(rng.integers(0, 50, size=(400, 700)).astype(np.float32))  # ties
        tv, ti = _float_topk(s, 16, jit=True)
        want = torch.topk(s, 16, dim=1).values
        assert torch.equal(tv, want) and torch.equal(s.gather(1, ti), want)
    finally:
        torch.set_num_threads(threads)
