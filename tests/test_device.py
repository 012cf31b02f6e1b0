"""The GPU code paths, run on the CPU with their flags forced (CI has no GPU).

Covered here: device selection (``pick_device`` with CUDA present / absent), bf16 autocast in
feature extraction (``amp=True``) and training (``amp: on``), DataLoader workers with
``pin_memory`` requested and ``non_blocking`` copies, features kept on the device until one final
copy, the float32 prefilter of exact ranking and its guard against TF32 / reduced-precision
matmuls, the exact fallback for wide bands of near-ties (the fused evaluation against the unfused
path is in tests/evaluation/test_evaluate.py),
and the on-device loss accumulation. What only CUDA can exercise: real page-locked memory and
asynchronous copies, bf16 on tensor cores, CUDA float64 products (see tests/evaluation/test_ranking.py
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

from cti_repro.evaluation.ranking import prefilter_available, rank


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
