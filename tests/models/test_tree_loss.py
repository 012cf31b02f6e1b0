"""Tree-aware losses against loops written straight from the docstring formulas."""

from __future__ import annotations

import math

import pytest
import torch

from cti_repro.models.loss import build_loss, contrastive_loss, tree_margin_loss, tree_soft_loss
from tests.models.test_loss import _cos, _rows, ref_contrastive

# labels 0..3: 0 = root A, 1 = its child B, 2 = B's child C, 3 = another tree X
LABEL_DIST = torch.tensor([[0, 1, 2, -1], [1, 0, 1, -1], [2, 1, 0, -1], [-1, -1, -1, 0]])
LABELS = torch.tensor([0, 1, 2, 3, 1, 3])


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)


def ref_tree_soft(c, p, dist, tau, lam, decay) -> float:
    C, P, D = _rows(c), _rows(p), dist.tolist()
    B = len(C)
    S = [[_cos(C[j], P[k]) / tau for k in range(B)] for j in range(B)]
    W = [[(decay ** D[j][k] if D[j][k] >= 0 else 0.0) if j != k else 1.0 for k in range(B)] for j in range(B)]
    T = [[w / sum(row) for w in row] for row in W]

    def ce(z, t):
        lse = math.log(sum(math.exp(v) for v in z))
        return -sum(tk * (zk - lse) for zk, tk in zip(z, t))

    ST = [list(r) for r in zip(*S)]
    return sum(lam * ce(ST[j], T[j]) + (1 - lam) * ce(S[j], T[j]) for j in range(B)) / B


def ref_tree_margin(c, p, dist, tau, lam, beta, margin) -> float:
    C, P, D = _rows(c), _rows(p), dist.tolist()
    B = len(C)
    far = [(j, k) for j in range(B) for k in range(B) if D[j][k] < 0]
    pen = sum(max(0.0, _cos(C[j], P[k]) - margin) for j, k in far) / max(1, len(far))
    return ref_contrastive(c, p, tau, lam) + beta * pen


def _batch_dist():
    return LABEL_DIST[LABELS][:, LABELS]


@pytest.mark.parametrize("decay", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_tree_soft_matches_formula(pair, decay, lam):
    c, p = pair
    got = tree_soft_loss(c, p, _batch_dist(), tau=0.5, lam=lam, decay=decay).item()
    assert got == pytest.approx(ref_tree_soft(c, p, _batch_dist(), 0.5, lam, decay), rel=1e-5)


def test_tree_soft_with_unrelated_labels_is_infonce(pair):
    c, p = pair
    unrelated = torch.full((6, 6), -1)
    unrelated.fill_diagonal_(0)
    assert tree_soft_loss(c, p, unrelated, tau=0.7, lam=0.3).item() == pytest.approx(
        contrastive_loss(c, p, tau=0.7, lam=0.3).item(), rel=1e-6)
    # and related labels do change it
    assert tree_soft_loss(c, p, _batch_dist()).item() != pytest.approx(contrastive_loss(c, p).item())


def test_tree_soft_two_pairs_closed_form():
    # B = 2, orthonormal aligned pairs, parent/child (d = 1), gamma = 0.5, tau = 1:
    # T = [[2/3, 1/3], [1/3, 2/3]], log softmax of [1, 0] = [1 - lse, -lse], lse = log(e + 1)
    c = torch.eye(2)
    lse = math.log(math.e + 1)
    want = -(2 / 3 * (1 - lse) + 1 / 3 * (-lse))
    got = tree_soft_loss(c, c.clone(), torch.tensor([[0, 1], [1, 0]]), tau=1.0, lam=0.5, decay=0.5).item()
    assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("beta,margin", [(0.0, 0.0), (1.0, 0.0), (2.0, -0.2), (0.5, 0.3)])
def test_tree_margin_matches_formula(pair, beta, margin):
    c, p = pair
    got = tree_margin_loss(c, p, _batch_dist(), tau=0.5, lam=0.5, beta=beta, margin=margin).item()
    assert got == pytest.approx(ref_tree_margin(c, p, _batch_dist(), 0.5, 0.5, beta, margin), rel=1e-5)


def test_tree_margin_without_far_pairs_is_infonce(pair):
    c, p = pair
    assert tree_margin_loss(c, p, torch.zeros(6, 6, dtype=torch.long), beta=3.0).item() == pytest.approx(
        contrastive_loss(c, p).item(), rel=1e-6)


def test_tree_margin_closed_form():
    # c0 = p1 direction, labels in different trees: far pairs (0,1), (1,0) with cosines 1 and 0
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    far = torch.tensor([[0, -1], [-1, 0]])
    got = tree_margin_loss(c, p, far, beta=1.0, margin=0.5).item()
    assert got == pytest.approx(contrastive_loss(c, p).item() + (0.5 + 0.5) / 2, rel=1e-6)


@pytest.mark.parametrize("kind", ["tree_soft", "tree_margin"])
def test_build_tree_loss(pair, kind):
    c, p = (t.clone().requires_grad_(True) for t in pair)
    fn = build_loss(kind, tau=0.5, lam=0.5, label_dist=LABEL_DIST.numpy(), decay=0.25, beta=2.0, margin=0.1)
    loss = fn(c, p, LABELS)
    want = (tree_soft_loss(*pair, _batch_dist(), 0.5, 0.5, 0.25) if kind == "tree_soft"
            else tree_margin_loss(*pair, _batch_dist(), 0.5, 0.5, 2.0, 0.1))
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(c.grad).all() and c.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="labels"):
        fn(*pair, None)
    with pytest.raises(ValueError, match="label_dist"):
        build_loss(kind)
    with pytest.raises(ValueError, match="infonce"):
        build_loss(kind, mask_same_label=True, label_dist=LABEL_DIST)


def test_bad_distance_shape(pair):
    with pytest.raises(ValueError, match=r"\[6, 6\]"):
        tree_soft_loss(*pair, torch.zeros(5, 5))


def test_tree_soft_at_decay_zero_is_the_same_label_control(pair):
    """``loss.tree_decay: 0`` (the beyond page's ``same_label`` control): same-label pairs are
    positives, every tree relative is ignored, so it differs from eq. 9 only by the first change."""
    c, p = pair
    dist = _batch_dist()
    same_only = torch.where(LABELS[:, None] == LABELS[None, :], 0, -1)  # relatives made unrelated
    control = tree_soft_loss(c, p, dist, tau=0.5, lam=0.3, decay=0.0).item()
    assert control == pytest.approx(tree_soft_loss(c, p, same_only, tau=0.5, lam=0.3, decay=0.5).item(), rel=1e-6)
    assert control != pytest.approx(contrastive_loss(c, p, tau=0.5, lam=0.3).item())  # same-label positives
    assert control != pytest.approx(tree_soft_loss(c, p, dist, tau=0.5, lam=0.3, decay=0.5).item())  # the tree
