"""Projection heads and the CtI model: shapes, structure, concatenation order, seeding."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cti_repro.models.heads import MODALITIES, BatchNormHead, CtIModel, ProjectionHead, build_head

DIMS = {"image": 512, "title": 768, "attributes": 768}


@pytest.mark.parametrize("kind", ["paper", "batchnorm"])
def test_head_shapes(kind):
    head = build_head(kind, 40, 16, 0.1)
    assert isinstance(head, ProjectionHead if kind == "paper" else BatchNormHead)
    assert head(torch.randn(5, 40)).shape == (5, 16)


def test_batchnorm_head_structure():
    head = BatchNormHead(10, 8, hidden=32)
    lin1, bn, act, lin2 = head.net
    assert (lin1.in_features, lin1.out_features, bn.num_features, lin2.out_features) == (10, 32, 32, 8)
    assert isinstance(act, torch.nn.ReLU) and lin2.bias is None
    assert BatchNormHead(10, 8).net[0].out_features == 8  # hidden defaults to d_out


def test_study_batchnorm_head_is_the_public_codes_2048_wide():
    """``model.bn_hidden`` (default 2048, the public code's ``src/model.py``) reaches both heads."""
    from cti_repro.config import StudyConfig

    cfg = StudyConfig()
    assert cfg.model.bn_hidden == 2048
    model = CtIModel(("image",), {"image": 12}, category_dim=16, d=8, head="batchnorm", bn_hidden=cfg.model.bn_hidden)
    assert model.category_head.net[0].out_features == model.product_head.net[1].num_features == 2048
    assert model.describe()["bn_hidden"] == 2048 and model.product_head.net[3].out_features == 8


def test_paper_head_layernorm_output():
    head = ProjectionHead(40, 16).eval()
    y = head(torch.randn(7, 40) * 5 + 3)
    # default LayerNorm affine (weight 1, bias 0): every row is standardised
    assert torch.allclose(y.mean(-1), torch.zeros(7), atol=1e-5)
    assert torch.allclose(y.var(-1, unbiased=False), torch.ones(7), atol=1e-3)


def test_paper_head_residual():
    torch.manual_seed(0)
    head = ProjectionHead(12, 6).eval()
    x = torch.randn(4, 12)
    with torch.no_grad():
        full = head(x)
        head.fc.weight.zero_()
        head.fc.bias.zero_()
        # with the MLP branch silenced only the residual path is left: LN(projection(x))
        assert torch.allclose(head(x), head.layer_norm(head.projection(x)), atol=1e-6)
        assert not torch.allclose(full, head(x))


def test_paper_head_dropout_train_vs_eval():
    head = ProjectionHead(12, 6, dropout=0.5)
    x = torch.randn(4, 12)
    torch.manual_seed(0)
    assert not torch.equal(head(x), head(x))  # dropout active in training mode
    head.eval()
    assert torch.equal(head(x), head(x))


def test_build_head_unknown():
    with pytest.raises(ValueError, match="unknown head kind 'mlp'"):
        build_head("mlp", 4, 4, 0.1)


@pytest.mark.parametrize(("name", "d_in"), [("CLIP-I", 512), ("CLIP-IA", 1280), ("CLIP-ITA", 2048)])
@pytest.mark.parametrize("head", ["paper", "batchnorm"])
def test_model_dims_and_forward(name, d_in, head):
    model = CtIModel.from_name(name, DIMS, category_dim=768, head=head, d=32)
    assert model.modalities == MODALITIES[name] and model.name == name
    assert model.product_dim == d_in
    first = model.product_head.projection if head == "paper" else model.product_head.net[0]
    assert first.in_features == d_in
    feats = {k: torch.randn(3, n) for k, n in DIMS.items()}  # extra modalities are ignored
    c, p = model(torch.randn(3, 768), feats)
    assert c.shape == p.shape == (3, 32)
    info = model.describe()
    json.dumps(info)
    assert info["product_input_dim"] == d_in and info["head"] == head
    assert info["params"] == sum(t.numel() for t in model.parameters())


def test_concat_order_is_image_title_attributes():
    dims = {"image": 2, "title": 3, "attributes": 4}
    model = CtIModel(("attributes", "title", "image"), dims, category_dim=5, d=8).eval()
    assert model.modalities == ("image", "title", "attributes")
    seen = {}
    model.product_head.projection.register_forward_pre_hook(lambda mod, args: seen.update(x=args[0]))
    feats = {m: torch.full((2, n), float(i + 1)) for i, (m, n) in enumerate(dims.items())}
    model.encode_product(dict(reversed(list(feats.items()))))  # dict order must not matter
    want = torch.tensor([1.0] * 2 + [2.0] * 3 + [3.0] * 4).expand(2, -1)
    assert torch.equal(seen["x"], want)


def test_custom_subset_order():
    model = CtIModel(["title", "image"], DIMS, category_dim=768, d=8)
    assert model.modalities == ("image", "title") and model.name == "custom"
    assert model.product_dim == 512 + 768


def test_missing_modality_raises_keyerror():
    model = CtIModel.from_name("CLIP-ITA", DIMS, category_dim=768, d=8)
    feats = {"image": torch.randn(2, 512), "attributes": torch.randn(2, 768)}
    with pytest.raises(KeyError, match="'title'"):
        model.encode_product(feats)


def test_invalid_configs():
    with pytest.raises(ValueError, match="unknown modalities"):
        CtIModel(("image", "caption"), DIMS, 768)
    with pytest.raises(ValueError, match="distinct"):
        CtIModel(("image", "image"), DIMS, 768)
    with pytest.raises(KeyError, match="title"):
        CtIModel(("image", "title"), {"image": 512}, 768)
    with pytest.raises(KeyError, match="CLIP-X"):
        CtIModel.from_name("CLIP-X", DIMS, 768)
    model = CtIModel.from_name("CLIP-I", DIMS, 768, d=8)
    with pytest.raises(ValueError, match="expected 512"):
        model.encode_product({"image": torch.randn(2, 768)})
    with pytest.raises(ValueError, match="expected 768"):
        model.encode_category(torch.randn(2, 512))


def test_half_precision_features_accepted():
    model = CtIModel.from_name("CLIP-IA", DIMS, 768, d=8)
    feats = {k: torch.randn(2, n).half() for k, n in DIMS.items()}
    c, p = model(torch.randn(2, 768).half(), feats)
    assert c.dtype == p.dtype == torch.float32


@pytest.mark.parametrize("head", ["paper", "batchnorm"])
def test_same_seed_same_weights(head):
    def make(seed):
        torch.manual_seed(seed)
        return CtIModel.from_name("CLIP-ITA", DIMS, 768, head=head, d=16).state_dict()

    a, b, other = make(0), make(0), make(1)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], other[k]) for k in a if a[k].is_floating_point())


def test_attention_pool_starts_as_the_mean_and_learns():
    from cti_repro.models.heads import AttentionPool

    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    pool = AttentionPool(2, hidden=3)
    pool.set_table(table)
    idx = torch.tensor([[0, 1, -1], [2, -1, -1], [-1, -1, -1]])
    out = pool(idx)  # u = 0: uniform weights over the real attributes = eq. 5
    assert torch.allclose(out, torch.tensor([[0.5, 0.5], [2.0, 2.0], [0.0, 0.0]]))
    # hand-set weights: e_i = u . tanh(W x_i + b) with W = I (first 2 dims), b = 0, u = (1, 0, 0)
    with torch.no_grad():
        pool.key.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        pool.key.bias.zero_()
        pool.query.copy_(torch.tensor([1.0, 0.0, 0.0]))
    e0, e1 = math.tanh(1.0), math.tanh(0.0)
    a0 = math.exp(e0) / (math.exp(e0) + math.exp(e1))
    assert pool(idx[:1]).tolist()[0] == pytest.approx([a0, 1 - a0], rel=1e-6)
    assert "table" not in pool.state_dict()  # the frozen values are not checkpointed


def test_ctimodel_attention_pool():
    dims = {"image": 4, "title": 3, "attributes": 2}
    torch.manual_seed(0)
    mean_model = CtIModel(("image", "title", "attributes"), dims, category_dim=5)
    torch.manual_seed(0)
    att = CtIModel(("image", "title", "attributes"), dims, category_dim=5, attribute_pool="attention")
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    att.set_attribute_table(table)
    att.eval(), mean_model.eval()
    feats = {"image": torch.randn(2, 4), "title": torch.randn(2, 3)}
    idx = torch.tensor([[0, 1], [1, -1]])
    # same heads at init, and attention starts from the mean: identical outputs
    p_att = att.encode_product({**feats, "attributes": idx})
    p_mean = mean_model.encode_product({**feats, "attributes": torch.tensor([[0.5, 0.5], [0.0, 1.0]])})
    assert torch.allclose(p_att, p_mean, atol=1e-6)
    p_att.sum().backward()
    assert att.attribute_attention.query.grad is not None
    assert att.describe()["attribute_pool"] == "attention"
    with pytest.raises(ValueError, match="attribute_pool"):
        CtIModel(("image",), dims, category_dim=5, attribute_pool="max")
    with pytest.raises(ValueError, match="attribute table"):
        att.set_attribute_table(torch.zeros(3, 7))
