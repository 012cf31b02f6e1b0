"""The two-branch network, its loss, the text featurisers and KCCA on tiny inputs."""

import numpy as np
import pytest
import torch

from cti_repro.models.xmodal.kcca import KCCA, KCCAMemoryError, check_kcca_memory, kcca_memory_bytes
from cti_repro.models.xmodal.loss import hadsell_contrastive_loss, two_branch_loss
from cti_repro.models.xmodal.text import BagOfWordsText, Word2VecText
from cti_repro.models.xmodal.two_branch import AlexNetBranch, MLPBranch, TwoBranchNet, dense_input, embed_rows, train_two_branch


def test_hadsell_loss_hand_computed():
    v_i = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v_t = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # positives: D00 = 0, D11 = |(-0.6, 0.2)| -> D^2 = 0.4; mean 1/2 D^2 = 0.1
    # negatives: D01 = |(0.4, -0.8)| = sqrt(0.8); D10 = |(-1, 1)| = sqrt 2 > m=1.5? no: 1.414 < 1.5
    d01, d10 = np.sqrt(0.8), np.sqrt(2.0)
    neg = 0.5 * np.mean([(1.5 - d01) ** 2, (1.5 - d10) ** 2])
    assert float(hadsell_contrastive_loss(v_i, v_t, margin=1.5)) == pytest.approx(0.1 + neg, rel=1e-5)
    total, parts = two_branch_loss(v_i, v_t, torch.tensor([0, 1]), torch.tensor([[9.0, 0.0], [0.0, 9.0]]), None,
                                   margin=1.5, aux_weight=2.0)
    assert set(parts) == {"contrastive", "aux_image"}
    assert float(total) == pytest.approx(float(parts["contrastive"]) + 2 * float(parts["aux_image"]), rel=1e-6)


def _hadsell_broadcast(v_i, v_t, margin):
    """The loss straight from the formula, over the [B, B, d] difference tensor (the reference form)."""
    d = (v_i[:, None, :] - v_t[None, :, :]).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    off = ~torch.eye(len(v_i), dtype=torch.bool)
    return 0.5 * d.diagonal().pow(2).mean() + 0.5 * torch.relu(margin - d[off]).pow(2).mean()


@pytest.mark.parametrize("b,d,unit,margin", [(2, 3, False, 1.0), (17, 5, False, 2.5), (64, 128, True, 1.0),
                                             (128, 32, True, 0.5)])
def test_hadsell_matmul_form_equals_the_broadcast_form(b, d, unit, margin):
    g = torch.Generator().manual_seed(b)
    a, t = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    if unit:
        a, t = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(t, dim=-1)
    grads = []
    for fn in (lambda x, y: hadsell_contrastive_loss(x, y, margin), lambda x, y: _hadsell_broadcast(x, y, margin)):
        x, y = a.clone().requires_grad_(), t.clone().requires_grad_()
        loss = fn(x, y)
        loss.backward()
        grads.append((float(loss.detach()), x.grad, y.grad))
    (l1, gx1, gy1), (l2, gx2, gy2) = grads
    assert l1 == pytest.approx(l2, rel=1e-5, abs=1e-6)
    torch.testing.assert_close(gx1, gx2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gy1, gy2, rtol=1e-4, atol=1e-5)


def test_hadsell_gradients_are_finite_at_zero_distance():
    a = torch.nn.functional.normalize(torch.randn(8, 16, generator=torch.Generator().manual_seed(0)), dim=-1)
    t = a.clone()
    t[3] = a[5]  # D_35 = 0 on a non-matching pair (and D_55 = 0 on the matching ones)
    x, y = a.clone().requires_grad_(), t.clone().requires_grad_()
    loss = hadsell_contrastive_loss(x, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
    assert float(loss.detach()) == pytest.approx(float(_hadsell_broadcast(a, t, 1.0)), rel=1e-5)


def test_hadsell_loss_builds_no_batch_by_batch_by_dim_tensor():
    """The loss is ~8 ms per step of a two-branch row when it materialises [B, B, d] differences."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for o in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(o, torch.Tensor):
                    Largest.numel = max(Largest.numel, o.numel())
            return out

    b, d = 64, 32
    x, y = torch.randn(b, d, requires_grad=True), torch.randn(b, d, requires_grad=True)
    with Largest():
        hadsell_contrastive_loss(x, y).backward()
    assert 0 < Largest.numel <= max(b * b, b * d)


def test_text_featurisers():
    texts = ["red steel mug", "blue cotton shirt", "red cotton dress"] * 5
    w = Word2VecText(dim=6, epochs=2, seed=3).fit(texts)
    a = w.transform(["red mug", "unknownword"])
    assert a.shape == (2, 6) and np.abs(a[0]).sum() > 0 and not a[1].any()
    assert w.stats["texts_without_known_word"] == 1
    assert (Word2VecText(dim=6, epochs=2, seed=3).fit(texts).transform(["red mug"]) == a[:1]).all()
    b = BagOfWordsText("count").fit(texts)
    x = b.transform(["red red mug"]).toarray()[0]
    assert b.dim == 7 and x[b.vectorizer.vocabulary_["red"]] == 2


def test_tokenize_is_gensims_simple_preprocess_without_importing_gensim():
    import json
    import os
    import subprocess
    import sys

    from gensim.utils import simple_preprocess

    from cti_repro.models.xmodal.text import tokenize

    texts = ["Red STEEL mug, 350ml (2-pack)", "x_y _under __init__ a b c", "Ça coûte 12€ — déjà vu", "ÆØÅ æøå ß ǅ İstanbul",
             "naïve café résumé", "x" * 40 + " " + "y" * 41, "tab\tnew\nline", "", "3.14 42 4ever", "日本語 テキスト",
             b"bytes \xc3\xa9t\xc3\xa9 \xff"]
    for t in texts:
        assert tokenize(t) == simple_preprocess(t, min_len=1, max_len=40), t
    # the bag-of-words rows tokenise and need nothing else of gensim (~2 s to import)
    probe = ("import json, sys; from cti_repro.models.xmodal.text import tokenize; "
             "print(json.dumps([tokenize('Red mug'), 'gensim' in sys.modules]))")
    toks, imported = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                               check=True, env=os.environ).stdout)
    assert toks == ["red", "mug"] and not imported


def test_word2vec_pretrained_path(tmp_path):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["red", "mug"], np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    kv.save(str(tmp_path / "v.kv"))
    w = Word2VecText(path=str(tmp_path / "v.kv")).fit([])
    assert w.dim == 3 and w.transform(["red mug"])[0].tolist() == [0.5, 0.5, 0.0]


def test_two_branch_training_lowers_the_loss_and_aligns():
    rng = np.random.default_rng(0)
    n, rows = 64, np.arange(64)
    img = rng.normal(size=(n, 10)).astype(np.float32)
    txt = (img @ rng.normal(size=(10, 12))).astype(np.float32)  # text is a linear view of the image
    labels = torch.as_tensor(rng.integers(0, 3, n))
    torch.manual_seed(0)
    net = TwoBranchNet(MLPBranch(10, 16, 32, 0.0), MLPBranch(12, 16, 32, 0.0), 16, n_classes=3)
    out = train_two_branch(net, dense_input(img), dense_input(txt), labels, rows[:48], rows[48:], epochs=15, lr=1e-2,
                           weight_decay=0.0, batch_size=16, margin=1.0, aux_weight=0.5, seed=0)
    h = out["history"]
    assert len(h) == 15 and h[-1]["train_loss"] < h[0]["train_loss"] and 1 <= out["best_epoch"] <= 15
    e_i = embed_rows(net.embed_image, dense_input(img), rows[:48])
    e_t = embed_rows(net.embed_text, dense_input(txt), rows[:48])
    assert np.allclose(np.linalg.norm(e_i, axis=1), 1, atol=1e-5)
    from cti_repro.evaluation.xmodal_metrics import median_rank_percent, true_match_ranks

    assert median_rank_percent(true_match_ranks(e_t, e_i), 48) < 25  # far better than chance (50%)


def test_alexnet_branch_a_few_steps_on_tiny_images():
    torch.manual_seed(0)
    net = TwoBranchNet(AlexNetBranch(8), MLPBranch(5, 8, 16), 8, n_classes=2)
    imgs = torch.randn(6, 3, 64, 64)
    txt = torch.randn(6, 5)
    out = train_two_branch(net, lambda r: imgs[torch.as_tensor(r)], lambda r: txt[torch.as_tensor(r)],
                           torch.tensor([0, 1, 0, 1, 0, 1]), np.arange(4), np.arange(4, 6), epochs=2, lr=1e-3,
                           weight_decay=0.0, batch_size=4, margin=1.0, aux_weight=1.0)
    assert out["steps"] == 2 and np.isfinite(out["history"][-1]["train_loss"])
    assert net.embed_image(imgs[:2]).shape == (2, 8)


def test_kcca_fits_states_descriptors_and_refuses_what_does_not_fit():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 3))
    img, txt = z @ rng.normal(size=(3, 6)), z @ rng.normal(size=(3, 5))
    m = KCCA(n_components=3, nystroem_components=20, max_descriptors=80, seed=0).fit(img, txt)
    assert m.info["training_descriptors"] == 80 and m.info["training_products"] == 120
    assert m.transform_image(img[:4]).shape == (4, 3) and m.transform_text(txt[:4]).shape == (4, 3)
    assert kcca_memory_bytes(10, 2, 3, 4, 1) == 8 * (6 * 40 + 50 + 64 + 40)
    with pytest.raises(KCCAMemoryError, match=r"max_descriptors to at most [\d,]+"):
        KCCA(n_components=3, nystroem_components=20, memory_gb=1e-6).fit(img, txt)
    with pytest.raises(KCCAMemoryError):  # 431,841 descriptors x 4096 components do not fit in 8 GiB
        check_kcca_memory(431_841, 4096, 300, 4096, 128, 8.0)
    info = check_kcca_memory(10_000, 512, 100, 256, 32, 8.0)
    assert info["max_descriptors_that_fit"] >= 10_000
