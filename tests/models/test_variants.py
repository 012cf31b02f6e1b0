"""The ablation options of the model and loss: dot similarity, learnable tau, per-modality L2 norm."""

import math

import pytest
import torch
import torch.nn.functional as F

from cti_repro.models.heads import CtIModel
from cti_repro.models.loss import build_loss, contrastive_loss


def test_dot_similarity_is_the_unnormalised_logit():
    c, p = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    # by hand: logits [[6, 0], [0, 1]]; c->p rows: CE = log(1 + e^-6), log(1 + e^-1)
    want = (math.log(1 + math.exp(-6)) + math.log(1 + math.exp(-1))) / 2
    assert contrastive_loss(c, p, lam=0.0, similarity="dot").item() == pytest.approx(want, rel=1e-6)
    # cosine ignores the scale: identical unit vectors -> logits [[1, 0], [0, 1]]
    cos = 2 * math.log(1 + math.exp(-1)) / 2
    assert contrastive_loss(c, p, lam=0.0).item() == pytest.approx(cos, rel=1e-6)
    with pytest.raises(ValueError):
        contrastive_loss(c, p, similarity="l1")


def test_learnable_tau_gets_a_gradient_and_starts_at_tau():
    model = CtIModel(("image",), {"image": 8}, category_dim=4, d=4, learn_tau=True, tau=0.5)
    assert model.tau == pytest.approx(0.5) and model.describe()["learnt_tau"] == pytest.approx(0.5)
    fn = build_loss("infonce", tau=0.5, logit_scale=model.logit_scale)
    c, p = model(torch.randn(6, 4), {"image": torch.randn(6, 8)})
    fixed = build_loss("infonce", tau=0.5)(c, p)
    loss = fn(c, p)
    assert loss.item() == pytest.approx(fixed.item(), rel=1e-5)  # same value at the start
    loss.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs().item() > 0
    assert "logit_scale" in dict(model.named_parameters())
    with pytest.raises(ValueError, match="infonce"):
        build_loss("soft", logit_scale=model.logit_scale)


def test_default_model_has_no_logit_scale_and_same_init():
    torch.manual_seed(0)
    a = CtIModel(("image",), {"image": 8}, category_dim=4, d=4)
    torch.manual_seed(0)
    b = CtIModel(("image",), {"image": 8}, category_dim=4, d=4, learn_tau=True)
    assert a.logit_scale is None and a.tau is None
    for k, v in a.state_dict().items():  # the learnable scale draws no random numbers
        assert torch.equal(v, b.state_dict()[k])


def test_normalize_modalities_removes_each_blocks_scale():
    torch.manual_seed(0)
    dims = {"image": 6, "title": 5}
    model = CtIModel(("image", "title"), dims, category_dim=3, d=4, normalize_modalities=True).eval()
    img, title = torch.randn(3, 6), torch.randn(3, 5)
    a = model.encode_product({"image": img * 22.0, "title": title})
    b = model.encode_product({"image": F.normalize(img, dim=-1), "title": title * 0.01})
    assert torch.allclose(a, b, atol=1e-5)
    model.normalize_modalities = False
    assert not torch.allclose(model.encode_product({"image": img * 22.0, "title": title}), a, atol=1e-3)
