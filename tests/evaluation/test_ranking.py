"""Retrieval: exact top-k with deterministic ties, chunking invariance, label-based evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cti_repro.evaluation.metrics import compute_metrics
from cti_repro.evaluation.evaluate import evaluate_ranking
from cti_repro.evaluation.ranking import FIXED_POINT_BITS, rank, rank_scores, required_depth


def _brute_force(scores: np.ndarray, k: int, tie_key: np.ndarray) -> np.ndarray:
    """Per-row lexsort on (score descending, tie_key ascending, index ascending)."""
    idx = np.arange(scores.shape[1])
    return np.stack([np.lexsort((idx, tie_key, -row))[:k] for row in scores])


def _fixed_point_scores(q: np.ndarray, c: np.ndarray, normalize: bool) -> np.ndarray:
    """Independent int64 version of rank()'s fixed-point scores (in units of 2**-52)."""

    def quantise(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        if normalize:
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
        else:
            x = x * 2.0 ** -np.ceil(np.log2(np.linalg.norm(x, axis=1).max()))
        return np.round(x * 2.0**FIXED_POINT_BITS).astype(np.int64)

    return quantise(q) @ quantise(c).T


def _int_data(seed: int, n_q: int = 23, n_c: int = 157, d: int = 3):
    """Small integer embeddings: raw dot products are exact integers, so ties are plentiful and exact."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-2, 3, (n_q, d), generator=g).double()
    c = torch.randint(-2, 3, (n_c, d), generator=g).double()
    return q, c


@pytest.mark.parametrize("k", [1, 7, 40, 157, 500])
def test_rank_matches_brute_force_with_ties(k: int) -> None:
    q, c = _int_data(seed=k)
    tie_key = np.random.default_rng(k).permutation(len(c))
    idx, val = rank(q, c, k, tie_key=tie_key, chunk_size=5, normalize=False)
    exact = (q @ c.T).numpy()  # small integers: the fixed-point scores are a fixed multiple
    want = _brute_force(exact, k, tie_key)
    assert idx.shape == val.shape == (len(q), min(k, len(c)))  # k > N is clipped
    assert idx.dtype == torch.int64
    np.testing.assert_array_equal(idx.numpy(), want)
    ex = np.take_along_axis(exact, want, axis=1)
    assert (val.numpy()[ex == 0] == 0).all()
    ratio = val.numpy()[ex != 0] / ex[ex != 0]
    assert len(ratio) and (ratio == ratio[0]).all() and ratio[0] > 0  # one power-of-two factor


def test_rank_default_tie_key_is_index_and_repeated_keys_are_stable() -> None:
    q, c = _int_data(seed=1)
    exact = (q @ c.T).numpy()
    idx, _ = rank(q, c, 30, normalize=False)
    np.testing.assert_array_equal(idx.numpy(), _brute_force(exact, 30, np.arange(len(c))))
    coarse = np.arange(len(c)) % 4  # many equal keys: fall back to the candidate index
    idx, _ = rank(q, c, 30, tie_key=coarse, normalize=False)
    np.testing.assert_array_equal(idx.numpy(), _brute_force(exact, 30, coarse))


def test_duplicate_candidates_ordered_by_tie_key() -> None:
    # Every vector appears 4 times; with cosine scores the copies must tie exactly and come out
    # adjacent, in ascending tie_key order.
    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.normal(size=(50, 32))).float()
    c = base.repeat(4, 1)  # candidate j is a copy of base[j % 50]
    q = torch.from_numpy(rng.normal(size=(20, 32))).float()
    tie_key = rng.permutation(len(c))
    idx, val = rank(q, c, 40, tie_key=tie_key, chunk_size=7)
    idx, val = idx.numpy(), val.numpy()
    for i in range(len(q)):
        groups = idx[i].reshape(10, 4)  # 40 results = 10 groups of 4 copies
        assert (groups % 50 == groups[:, :1] % 50).all()
        assert (np.diff(tie_key[groups], axis=1) > 0).all()
        assert (val[i].reshape(10, 4) == val[i].reshape(10, 4)[:, :1]).all()  # bitwise ties
        assert (np.diff(val[i]) <= 0).all()


@pytest.mark.parametrize("normalize", [True, False])
def test_chunked_equals_unchunked(normalize: bool) -> None:
    rng = np.random.default_rng(5)
    q = torch.from_numpy(rng.normal(size=(37, 24))).float()
    c = torch.from_numpy(rng.normal(size=(300, 24))).float()
    c[150:200] = c[:50]  # some exact ties as well
    tie_key = rng.permutation(300)
    ref_idx, ref_val = rank(q, c, 60, tie_key=tie_key, chunk_size=10_000, normalize=normalize)
    for chunk in (1, 3, 16, 37, 100):
        idx, val = rank(q, c, 60, tie_key=tie_key, chunk_size=chunk, normalize=normalize)
        assert torch.equal(idx, ref_idx), chunk
        assert torch.equal(val, ref_val), chunk
    # Against a brute-force lexsort of independently computed (int64) fixed-point scores ...
    fixed = _fixed_point_scores(q.numpy(), c.numpy(), normalize)
    want = _brute_force(fixed, 60, tie_key)
    np.testing.assert_array_equal(ref_idx.numpy(), want)
    np.testing.assert_array_equal(ref_val.numpy(), np.take_along_axis(fixed, want, 1) * 2.0**-52)
    # ... which are the cosines up to the quantisation (~1e-7).
    if normalize:
        cos = (torch.nn.functional.normalize(q.double(), dim=1) @ torch.nn.functional.normalize(c.double(), dim=1).T).numpy()
        np.testing.assert_allclose(ref_val.numpy(), np.take_along_axis(cos, want, 1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_rank_scores_matches_brute_force_and_chunking(jit, monkeypatch) -> None:
    from cti_repro.evaluation import select_jit

    if jit and not select_jit.available():
        pytest.skip("numba not installed")
    monkeypatch.setattr(select_jit, "MIN_SCORES", 0 if jit else 1 << 62)  # the kernel's top-k, or torch.topk
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 6, size=(31, 90)).astype(np.float64)  # heavy ties, as with BM25 zeros
    tie_key = rng.permutation(90)
    want = _brute_force(scores, 25, tie_key)
    for chunk in (1, 4, 31, 64):
        idx, val = rank_scores(scores, 25, tie_key=tie_key, chunk_size=chunk)
        np.testing.assert_array_equal(idx.numpy(), want)
        np.testing.assert_array_equal(val.numpy(), np.take_along_axis(scores, want, axis=1))
    idx, _ = rank_scores(torch.from_numpy(scores), 1000)  # k > N, default tie key
    np.testing.assert_array_equal(idx.numpy(), _brute_force(scores, 90, np.arange(90)))
    with pytest.raises(ValueError, match="NaN"):
        rank_scores(np.where(scores == 5, np.nan, scores), 3)


def test_rank_edge_cases() -> None:
    q, c = _int_data(seed=3, n_q=4, n_c=6)
    idx, val = rank(q[:0], c, 5)
    assert idx.shape == (0, 5)
    with pytest.raises(ValueError, match="k must"):
        rank(q, c, 0)
    with pytest.raises(ValueError, match="tie_key"):
        rank(q, c, 3, tie_key=np.arange(5))
    with pytest.raises(ValueError, match="NaN"):
        rank_scores(torch.tensor([[0.0, float("nan")]]), 1)
    idx, _ = rank(q.numpy(), c.numpy(), 3, device="cpu")  # numpy inputs and explicit device
    assert idx.shape == (4, 3)
    with pytest.raises(ValueError, match="NaN or inf"):
        rank(torch.full((1, 3), float("inf")), c, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu() -> None:
    rng = np.random.default_rng(8)
    q = torch.from_numpy(rng.normal(size=(300, 512))).float()
    c = torch.from_numpy(rng.normal(size=(5000, 512))).float()
    c[2500:] = c[:2500]
    tie_key = rng.permutation(5000)
    cpu = rank(q, c, 100, tie_key=tie_key, chunk_size=128)
    gpu = rank(q.cuda(), c.cuda(), 100, tie_key=tie_key, chunk_size=77)
    assert torch.equal(cpu[0], gpu[0]) and torch.equal(cpu[1], gpu[1])
    s = torch.from_numpy(rng.integers(0, 4, size=(50, 3000)).astype(np.float32))
    assert all(torch.equal(a, b) for a, b in zip(rank_scores(s, 64), rank_scores(s.cuda(), 64)))


def test_evaluate_ranking_hand_computed() -> None:
    cand = np.array(["a", "b", "a", "c", "a", "b"], dtype=object)
    queries = ["a", "c", "z"]  # R = 3, 1, 0
    idx = np.array([[0, 1, 2, 3, 4, 5],  # a b a c a b -> rel 1 0 1 0 1 0
                    [1, 3, 0, 2, 4, 5],  # c at rank 2 -> rel 0 1 0 0 0 0
                    [0, 1, 2, 3, 4, 5]])  # nothing relevant
    got = evaluate_ranking(torch.from_numpy(idx), queries, cand)
    # query a: P@1 = 1, P@5 = 3/5, P@10 = 3/10, AP@5 (hits) = (1 + 2/3 + 3/5)/3 = 34/45,
    #          RP = top 3 = 1 0 1 -> 2/3
    # query c: P@1 = 0, P@5 = 1/5, AP = 1/2, RP = top 1 = 0
    # query z: R = 0 -> all 0
    np.testing.assert_allclose(got["P@1"], [100, 0, 0])
    np.testing.assert_allclose(got["P@5"], [60, 20, 0])
    np.testing.assert_allclose(got["P@10"], [30, 10, 0])
    np.testing.assert_allclose(got["MAP@5"], [100 * 34 / 45, 50, 0])
    np.testing.assert_allclose(got["R-precision"], [200 / 3, 0, 0])
    rel = np.array([[1, 0, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0], [0] * 6], dtype=bool)
    want = compute_metrics(rel, np.array([3, 1, 0]), ap_norm="min_k_R")
    for name, v in evaluate_ranking(idx, queries, cand, ap_norm="min_k_R").items():
        np.testing.assert_allclose(v, want[name])
    with pytest.raises(ValueError, match="required_depth"):
        evaluate_ranking(idx[:, :2], queries, cand)  # R = 3 for query a but depth 2


def test_rank_then_evaluate_end_to_end() -> None:
    # Candidates cluster by label; queries are the cluster centres, so retrieval is perfect.
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(5, 16))
    labels = rng.integers(0, 5, size=80)
    cands = centres[labels] + 0.01 * rng.normal(size=(80, 16))
    names = np.array([f"cat{i}" for i in range(5)], dtype=object)
    n_rel = np.bincount(labels, minlength=5)
    idx, _ = rank(torch.from_numpy(centres), torch.from_numpy(cands), required_depth(n_rel))
    got = evaluate_ranking(idx, names, names[labels])
    np.testing.assert_allclose(got["R-precision"], 100.0)
    np.testing.assert_allclose(got["MAP@10"], 100.0)


def test_required_depth() -> None:
    assert required_depth(np.array([3, 25, 7])) == 25
    assert required_depth([1, 2]) == 10
    assert required_depth(torch.tensor([12])) == 12
    assert required_depth(np.array([], dtype=int)) == 10


def test_fixed_point_in_place_steps_equal_the_formula_and_leave_the_input_alone():
    import torch.nn.functional as F

    from cti_repro.evaluation.ranking import FIXED_POINT_BITS, _fixed_point

    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.normal(size=(50, 33)) * 7.0)
    keep = x.clone()
    scale = 2.0 ** -np.ceil(np.log2(float(x.norm(dim=1).max())))
    np.testing.assert_array_equal(_fixed_point(x, True).numpy(),
                                  torch.round(F.normalize(x, dim=1) * 2.0**FIXED_POINT_BITS).numpy())
    np.testing.assert_array_equal(_fixed_point(x, False).numpy(), torch.round(x * scale * 2.0**FIXED_POINT_BITS).numpy())
    assert torch.equal(x, keep)  # float64 CPU input: no copy on the way in, so in-place steps must not reach it
