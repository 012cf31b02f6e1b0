"""The GPU code paths, run on the CPU with their flags forced (CI has no GPU).

Covered here: device selection (``pick_device`` with CUDA present / absent), bf16 autocast in
feature extraction (``amp=True``) and training (``amp: on``), DataLoader workers with
``pin_memory`` requested and ``non_blocking`` copies, features kept on the device until one final
copy, the float32 prefilter of exact ranking and its guard against TF32 / reduced-precision
matmuls, the exact fallback for wide bands of near-ties, the fused evaluation on the device path,
and the on-device loss accumulation. What only CUDA can exercise: real page-locked memory and
asynchronous copies, bf16 on tensor cores, CUDA float64 products (see test_retrieval's
``test_cuda_equals_cpu``, skipped without a GPU).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cti_repro import device as D
from cti_repro import features as F

from cti_repro.evaluation.evaluate import evaluate_embeddings, evaluate_ranking, evaluate_scores
from cti_repro.evaluation.ranking import label_codes, prefilter_available, rank, rank_scores, required_depth


# ---- device selection ---------------------------------------------------------------------------
def test_pick_device_with_and_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert D.pick_device("auto") == "cuda"
    assert D.pick_device("cuda") == "cuda"
    assert D.pick_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.pick_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        D.pick_device("cuda")


def test_amp_context_defaults():
    with D.amp_context("cpu", None):
        assert not torch.is_autocast_enabled("cpu")  # off by default on the CPU
    with D.amp_context("cpu", True):
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available, disabling autocast" on CPU-only builds
        ctx = D.amp_context("cuda:0", None)  # requested by default for CUDA devices
    assert ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16


# ---- feature extraction -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("img")
    paths = []
    for i, colour in enumerate(["red", "green", "blue", "white", "black", "yellow", "purple"]):
        p = root / f"{i}.png"
        Image.new("RGB", (48, 40), colour).save(p)
        paths.append(p)
    (root / "bad.png").write_bytes(b"not an image")
    return paths + [root / "bad.png", None]


@pytest.fixture(scope="module")
def tiny_clip():
    return F.load_clip("Tiny-ViT-32", "none", allow_random=True, seed=0)


def test_encode_images_workers_pinned_memory_and_amp(images, tiny_clip):
    net, preprocess, tokenizer, _ = tiny_clip
    ref, ok = F.encode_images(net, preprocess, images, batch_size=4, num_workers=0, device="cpu", progress=False)
    assert ok.tolist() == [True] * 7 + [False, False] and not ref[~ok].any()
    # The CUDA settings: worker processes, pinned memory requested (a no-op without CUDA), non-blocking copies.
    par, ok2 = F.encode_images(net, preprocess, images, batch_size=3, num_workers=2, device="cpu",
                               pin_memory=True, progress=False)
    np.testing.assert_array_equal(ok, ok2)
    np.testing.assert_allclose(par, ref, rtol=1e-5, atol=1e-6)
    # bf16 autocast, forced on the CPU: same features up to bf16 rounding.
    amp, _ = F.encode_images(net, preprocess, images, batch_size=4, device="cpu", amp=True, progress=False)
    assert amp.dtype == np.float32 and np.isfinite(amp).all()
    cos = (amp[ok] * ref[ok]).sum(1) / np.linalg.norm(amp[ok], axis=1) / np.linalg.norm(ref[ok], axis=1)
    assert (cos > 0.98).all()
    txt = F.encode_clip_text(net, tokenizer, ["a red kettle", "shoes"], device="cpu")
    txt_amp = F.encode_clip_text(net, tokenizer, ["a red kettle", "shoes"], device="cpu", amp=True)
    assert txt.shape == txt_amp.shape == (2, 64) and np.isfinite(txt_amp).all()


# ---- exact ranking: float32 prefilter, exact fallback, device argument ---------------------------
def _brute(scores: np.ndarray, k: int, tie_key: np.ndarray) -> np.ndarray:
    idx = np.arange(scores.shape[1])
    return np.stack([np.lexsort((idx, tie_key, -row))[:k] for row in scores])


def test_prefilter_guard():
    assert prefilter_available("cpu")
    old, old_tf32 = torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32
    try:
        torch.set_float32_matmul_precision("high")  # TF32 / bf16 allowed: the error bound would not hold
        assert not prefilter_available("cpu") and not prefilter_available("cuda")
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = True
        assert not prefilter_available("cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32
        torch.set_float32_matmul_precision(old)
    assert prefilter_available("cpu")
    # Without the bound, ranking falls back to exact float64 and gives the same result.
    q, c = torch.randn(20, 8), torch.randn(400, 8)
    want = rank(q, c, 5, prefilter=False)
    try:
        torch.set_float32_matmul_precision("high")
        got = rank(q, c, 5)
    finally:
        torch.set_float32_matmul_precision(old)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("chunk", [5, 64, 1000])
def test_prefilter_equals_exact_with_duplicates_and_near_ties(chunk):
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


# ---- training -----------------------------------------------------------------------------------
def test_training_amp_and_on_device_loss_sum():
    from cti_repro.config import TrainConfig
    from cti_repro.models.loss import build_loss
    from cti_repro.models.heads import CtIModel
    from cti_repro.device import device_type
    from cti_repro.models.train import PairTensors, evaluate_loss, train

    assert device_type("cuda:1") == "cuda" and device_type("cpu") == "cpu"
    g = torch.Generator().manual_seed(0)
    data = PairTensors(torch.randn(50, 8, generator=g), {"image": torch.randn(50, 6, generator=g)},
                       torch.randint(0, 4, (50,), generator=g))
    torch.manual_seed(0)
    model = CtIModel(("image",), {"image": 6}, category_dim=8, d=4)
    loss = build_loss("infonce")
    res = train(model, data, data, loss, TrainConfig(epochs=1, amp="on"), batch_size=16, device="cpu", progress=False)
    assert res.amp and np.isfinite(res.history[0]["val_loss"])
    # evaluate_loss sums on the device; same value as a per-batch host sum.
    model.eval()
    total = count = 0
    with torch.no_grad():
        for a in range(0, 50, 16):
            n = min(16, 50 - a)
            c, p = model(data.category[a : a + n], {"image": data.product["image"][a : a + n]})
            total += float(loss(c, p, data.labels[a : a + n])) * n
            count += n
    assert evaluate_loss(model, data, loss, 16, "cpu", False, shuffle_seed=None) == pytest.approx(total / count, rel=1e-12)
