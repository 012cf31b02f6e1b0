"""MLF and Kaleido-BERT: forward shapes and each loss against a hand-computed case."""

import math

import numpy as np
import pytest
import torch

from cti_repro.models.finegrained.cnn import kaleido_patches, load_backbone, multi_level_and_kaleido
from cti_repro.models.finegrained.kaleido import KaleidoBERT, PairScorer, itm_batch
from cti_repro.models.finegrained.loss import bidirectional_hinge_loss, itm_loss
from cti_repro.models.finegrained.mlf import MLF, Vocabulary


def test_hinge_loss_hand_computed():
    # images (rows) x texts (columns); margin 0.2
    s = torch.tensor([[0.9, 0.8, 0.1],
                      [0.5, 0.6, 0.7],
                      [0.0, 0.2, 0.3]])
    # image-side hinges (row i, j != i): max(0, 0.2 - S_ii + S_ij)
    #   row 0: 0.2-0.9+0.8=0.1, 0.2-0.9+0.1=0   row 1: 0.2-0.6+0.5=0.1, 0.2-0.6+0.7=0.3
    #   row 2: 0.2-0.3+0.0=0, 0.2-0.3+0.2=0.1
    # text-side hinges (column j, i != j): max(0, 0.2 - S_jj + S_ij)
    #   col 0: 0.2-0.9+0.5=0, 0.2-0.9+0=0      col 1: 0.2-0.6+0.8=0.4, 0.2-0.6+0.2=0
    #   col 2: 0.2-0.3+0.1=0, 0.2-0.3+0.7=0.6
    hardest = (0.1 + 0.3 + 0.1 + 0.0 + 0.4 + 0.6) / 3
    summed = (0.1 + 0.1 + 0.3 + 0.1 + 0.4 + 0.6) / 3
    assert float(bidirectional_hinge_loss(s, 0.2, hardest=True)) == pytest.approx(hardest, abs=1e-6)
    assert float(bidirectional_hinge_loss(s, 0.2, hardest=False)) == pytest.approx(summed, abs=1e-6)


def test_hinge_loss_is_zero_when_every_match_wins_by_the_margin():
    assert float(bidirectional_hinge_loss(torch.eye(4), 0.5)) == 0.0


def test_itm_loss_hand_computed():
    logits = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    y = torch.tensor([1, 0])
    want = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))) / 2
    assert float(itm_loss(logits, y)) == pytest.approx(want, abs=1e-6)


def test_mlf_shapes_and_unit_embeddings():
    vocab = Vocabulary(["red cotton dress", "blue leather shoes", "red shoes"])
    ids = vocab.encode(["red dress", "unknownword", ""], 5)
    assert ids.shape == (3, 5) and ids[1, 0] == 1 and ids[2, 0] == 1  # UNK, and one UNK for an empty text
    net = MLF((4, 8), len(vocab), word_dim=6, hidden=10, dim=7)
    x = torch.randn(3, 12)
    t, i = net.embed_text(torch.as_tensor(ids)), net.embed_image(x)
    assert t.shape == i.shape == (3, 7)
    assert torch.allclose(t.norm(dim=1), torch.ones(3)) and torch.allclose(i.norm(dim=1), torch.ones(3))
    assert net(x, torch.as_tensor(ids)).shape == (3, 3)


def test_cnn_levels_and_kaleido_grids_shapes():
    net, ident = load_backbone("resnet18", pretrained=False, allow_random=False)
    assert ident["pretrained"] is False and ident["weights"].startswith("random")
    a, b = multi_level_and_kaleido(net, torch.randn(2, 3, 64, 64), levels=3)
    assert a.shape == (2, 64 + 128 + 256 + 512)
    assert b.shape == (2, kaleido_patches(3), 512) and kaleido_patches(5) == 55
    # the 1x1 grid is the global average of the last stage, i.e. the last level of the multi-level features
    assert torch.allclose(b[:, 0], a[:, -512:], atol=1e-5)


class _TinyBert(torch.nn.Module):
    """A 1-layer randomly initialised BertModel (no checkpoint needed for the shapes)."""

    def __new__(cls):
        from transformers import BertConfig, BertModel

        return BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, max_position_embeddings=64))


def test_kaleido_forward_shapes_and_pair_scores():
    torch.manual_seed(0)
    net = KaleidoBERT(_TinyBert(), patch_dim=12).eval()
    ids = torch.randint(5, 50, (3, 6))
    mask = torch.ones(3, 6, dtype=torch.long)
    assert net(ids, mask, torch.randn(3, 5, 12)).shape == (3, 2)
    patches = np.random.default_rng(0).normal(size=(4, 5, 12)).astype(np.float16)
    scorer = PairScorer(net, np.tile(ids.numpy()[:1], (4, 1)), np.ones((4, 6), np.int64), patches, batch=3)
    s = scorer(np.array([0, 1, 2, 3, 0]), np.array([0, 1, 2, 3, 3]))
    assert s.shape == (5,) and scorer.pairs == 5
    # same text and image: same score whatever batch it falls in
    assert s[0] == pytest.approx(scorer(np.array([0]), np.array([0]))[0], abs=1e-5)


def test_itm_batch_pairs_every_product_with_a_wrong_partner():
    rows = np.array([10, 11, 12, 13])
    t, i, y = itm_batch(rows, 2, np.random.default_rng(0))
    assert len(t) == len(i) == len(y) == 12 and y.sum() == 4
    assert (t[y == 1] == i[y == 1]).all() and (t[y == 0] != i[y == 0]).all()


def test_missing_imagenet_weights_are_refused_unless_random_is_allowed(monkeypatch):
    import torchvision.models as tvm

    from cti_repro.encoders import WeightsUnavailableError

    real = tvm.resnet18

    def offline(weights=None, **kw):
        if weights is not None:
            raise RuntimeError("no network")
        return real(weights=None, **kw)

    monkeypatch.setattr(tvm, "resnet18", offline)
    with pytest.raises(WeightsUnavailableError, match="allow_random"):
        load_backbone("resnet18", pretrained=True, allow_random=False)  # the xmarket profile
    _, ident = load_backbone("resnet18", pretrained=True, allow_random=True)  # offline profiles: labelled
    assert ident["pretrained"] is False and ident["weights"] == "random(seed=0)"


def test_xmarket_profile_has_the_papers_sizes_and_refuses_random_weights():
    from cti_repro.config import load_config

    x = load_config("xmarket").finegrained
    assert (x.cnn.backbone, x.cnn.pretrained, x.cnn.allow_random) == ("resnet50", True, False)
    assert (x.kaleido.init, x.kaleido.layers, x.kaleido.levels, x.negatives) == ("bert-base-uncased", 0, 5, 100)
    assert x.max_queries == 0 and x.kaleido.train_products == 0
