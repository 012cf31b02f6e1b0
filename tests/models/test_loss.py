"""Losses against loop-based implementations written straight from the formulas."""

from __future__ import annotations

import math

import pytest
import torch

from cti_repro.models.loss import LOSSES, build_loss, contrastive_loss, soft_target_loss


def _rows(t: torch.Tensor) -> list[list[float]]:
    return t.double().tolist()


def _cos(x: list[float], y: list[float]) -> float:
    dot = sum(a * b for a, b in zip(x, y))
    return dot / (math.sqrt(sum(a * a for a in x)) * math.sqrt(sum(b * b for b in y)))


def _dot(x: list[float], y: list[float]) -> float:
    return sum(a * b for a, b in zip(x, y))


def ref_contrastive(c, p, tau, lam, labels=None) -> float:
    """Eqs. 7-9 with explicit sums; with labels, same-label k != j are left out of the sums."""
    C, P = _rows(c), _rows(p)
    B = len(C)
    keep = [[k == j or labels is None or labels[k] != labels[j] for k in range(B)] for j in range(B)]
    total = 0.0
    for j in range(B):
        num = math.exp(_cos(C[j], P[j]) / tau)
        den_c2p = sum(math.exp(_cos(C[j], P[k]) / tau) for k in range(B) if keep[j][k])
        den_p2c = sum(math.exp(_cos(P[j], C[k]) / tau) for k in range(B) if keep[j][k])
        l_c2p = -math.log(num / den_c2p)  # (7)
        l_p2c = -math.log(num / den_p2c)  # (8)
        total += lam * l_p2c + (1 - lam) * l_c2p  # (9)
    return total / B


def ref_soft(c, p, tau, normalize) -> float:
    C, P = _rows(c), _rows(p)
    if normalize:
        C = [[a / math.sqrt(_dot(x, x)) for a in x] for x in C]
        P = [[a / math.sqrt(_dot(x, x)) for a in x] for x in P]
    B = len(C)
    Z = [[_dot(C[j], P[k]) / tau for k in range(B)] for j in range(B)]
    S = [[(_dot(C[j], C[k]) + _dot(P[j], P[k])) / 2 * tau for k in range(B)] for j in range(B)]
    T = [[math.exp(s) / sum(math.exp(v) for v in row) for s in row] for row in S]

    def soft_ce(logits, targets, j):
        lse = math.log(sum(math.exp(v) for v in logits[j]))
        return -sum(targets[j][k] * (logits[j][k] - lse) for k in range(B))

    ZT = [list(r) for r in zip(*Z)]
    TT = [list(r) for r in zip(*T)]
    return sum((soft_ce(Z, T, j) + soft_ce(ZT, TT, j)) / 2 for j in range(B)) / B


def _L(*args, **kwargs) -> float:
    return contrastive_loss(*args, **kwargs).item()


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)


@pytest.mark.parametrize("tau", [0.07, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_contrastive_matches_equations(pair, tau, lam):
    c, p = pair
    got = contrastive_loss(c, p, tau=tau, lam=lam).item()
    assert got == pytest.approx(ref_contrastive(c, p, tau, lam), rel=1e-5, abs=1e-6)


def test_lambda_extremes_are_single_directions(pair):
    c, p = pair
    # lam = 1 keeps only p->c; swapping c and p turns it into c->p of the swapped batch.
    assert _L(c, p, lam=1.0) == pytest.approx(_L(p, c, lam=0.0), rel=1e-6)
    c2p = ref_contrastive(c, p, 1.0, 0.0)
    p2c = ref_contrastive(c, p, 1.0, 1.0)
    assert c2p != pytest.approx(p2c)  # the directions really differ on random data
    mid = contrastive_loss(c, p, lam=0.5).item()
    assert mid == pytest.approx((c2p + p2c) / 2, rel=1e-5)


def test_symmetric_at_half(pair):
    c, p = pair
    assert _L(c, p, lam=0.5) == pytest.approx(_L(p, c, lam=0.5), rel=1e-6)


def test_aligned_beats_shuffled():
    c = torch.eye(6, 8)  # orthogonal rows
    aligned = contrastive_loss(c, c.clone())
    shuffled = contrastive_loss(c, c[torch.tensor([1, 2, 3, 4, 5, 0])])
    assert aligned < shuffled
    # closed form for orthonormal pairs at tau = 1: -log(e / (e + B - 1))
    assert aligned.item() == pytest.approx(-math.log(math.e / (math.e + 5)), rel=1e-6)


def test_scale_invariant(pair):
    c, p = pair  # cosine similarity: rescaling rows changes nothing
    scale = torch.arange(1, 7, dtype=torch.float32)[:, None]
    assert _L(c * scale, p * 3.0) == pytest.approx(_L(c, p), rel=1e-5)


def test_mask_distinct_labels_is_unmasked(pair):
    c, p = pair
    labels = torch.arange(6)
    assert _L(c, p, labels=labels) == pytest.approx(_L(c, p), rel=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_mask_duplicate_labels_matches_hand(pair, lam):
    c, p = pair
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    got = contrastive_loss(c, p, tau=0.5, lam=lam, labels=labels).item()
    want = ref_contrastive(c, p, 0.5, lam, labels=labels.tolist())
    assert got == pytest.approx(want, rel=1e-5)
    assert got != pytest.approx(contrastive_loss(c, p, tau=0.5, lam=lam).item())


def test_mask_all_same_label_gives_zero(pair):
    c, p = pair  # only the positive is left in each denominator
    assert _L(c, p, labels=torch.zeros(6, dtype=torch.long)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("normalize", [True, False])
def test_soft_matches_formula(pair, tau, normalize):
    c, p = pair
    got = soft_target_loss(c, p, tau=tau, normalize=normalize).item()
    assert got == pytest.approx(ref_soft(c, p, tau, normalize), rel=1e-5)


@pytest.mark.parametrize("kind", ["infonce", "soft"])
def test_gradients_flow(pair, kind):
    c, p = (t.clone().requires_grad_(True) for t in pair)
    loss = build_loss(kind, tau=1.0, lam=0.5)(c, p, None)
    loss.backward()
    for t in (c, p):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_masked_gradients_finite(pair):
    c, p = (t.clone().requires_grad_(True) for t in pair)
    contrastive_loss(c, p, labels=torch.tensor([0, 0, 1, 1, 2, 2])).backward()
    assert torch.isfinite(c.grad).all() and torch.isfinite(p.grad).all()


def test_autocast_keeps_float32(pair):
    c, p = pair
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = contrastive_loss(c.bfloat16(), p.bfloat16())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_L(c.bfloat16().float(), p.bfloat16().float()), rel=1e-6)


def test_build_loss(pair):
    c, p = pair
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    assert set(LOSSES) == {"infonce", "soft"}
    assert build_loss("infonce", 0.5, 0.3)(c, p, labels).item() == pytest.approx(
        contrastive_loss(c, p, 0.5, 0.3).item()
    )  # labels are ignored unless masking is on
    masked = build_loss("infonce", 0.5, 0.3, mask_same_label=True)
    assert masked(c, p, labels).item() == pytest.approx(contrastive_loss(c, p, 0.5, 0.3, labels).item())
    with pytest.raises(ValueError, match="labels"):
        masked(c, p, None)
    assert build_loss("soft", 2.0)(c, p, labels).item() == pytest.approx(soft_target_loss(c, p, 2.0).item())
    with pytest.raises(ValueError, match="unknown loss kind 'nce'.*infonce"):
        build_loss("nce", 1.0, 0.5)
    with pytest.raises(ValueError, match="infonce"):
        build_loss("soft", 1.0, 0.5, mask_same_label=True)


def test_bad_inputs(pair):
    c, p = pair
    with pytest.raises(ValueError, match="same shape"):
        contrastive_loss(c, p[:5])
    with pytest.raises(ValueError, match="tau"):
        contrastive_loss(c, p, tau=0.0)
    with pytest.raises(ValueError, match="lam"):
        contrastive_loss(c, p, lam=1.5)
