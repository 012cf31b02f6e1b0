"""The two-branch training loop itself: NaN guard, validation batches, the auxiliary terms in the step."""

import numpy as np
import pytest
import torch

from cti_repro.models.train import NonFiniteLossError
from cti_repro.models.xmodal.two_branch import MLPBranch, TwoBranchNet, dense_input, embed_rows, train_two_branch


def _net(d_img: int = 6, d_txt: int = 5, classes: int = 3) -> TwoBranchNet:
    torch.manual_seed(0)
    return TwoBranchNet(MLPBranch(d_img, 8, 16, 0.0), MLPBranch(d_txt, 8, 16, 0.0), 8, n_classes=classes)


def _fit(net, img, txt, labels, train, val, **kw):
    args = dict(epochs=2, lr=1e-2, weight_decay=0.0, batch_size=8, margin=1.0, aux_weight=0.5, seed=0)
    args.update(kw)
    return train_two_branch(net, dense_input(img), dense_input(txt), torch.as_tensor(labels), train, val, **args)


def test_nan_validation_loss_raises_instead_of_keeping_the_initial_weights():
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(40, 5)).astype(np.float32)
    img[35] = np.nan  # one validation product with a broken feature row: training rows stay finite
    with pytest.raises(NonFiniteLossError, match="not finite"):
        _fit(_net(), img, txt, rng.integers(0, 3, 40), np.arange(30), np.arange(30, 40))


def test_validation_batches_are_one_fixed_shuffle():
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(80, 6)).astype(np.float32), rng.normal(size=(80, 5)).astype(np.float32)
    seen: list[list[int]] = []
    base = dense_input(img)

    def image_input(rows):
        if not torch.is_grad_enabled():  # validation runs under no_grad
            seen.append([int(r) for r in rows])
        return base(rows)

    net = _net()
    train_two_branch(net, image_input, dense_input(txt), torch.as_tensor(rng.integers(0, 3, 80)), np.arange(40),
                     np.arange(40, 80), epochs=2, lr=1e-2, weight_decay=0.0, batch_size=8, margin=1.0,
                     aux_weight=0.5, seed=0)
    epoch1, epoch2 = seen[: len(seen) // 2], seen[len(seen) // 2 :]
    flat = [r for b in epoch1 for r in b]
    assert epoch1 == epoch2  # the same batches every epoch: comparable losses
    assert sorted(flat) == list(range(40, 80)) and flat != sorted(flat)  # all rows, not in catalogue order


@pytest.mark.parametrize("aux_weight", [0.0, 0.7])
def test_step_loss_is_contrastive_plus_weighted_auxiliary_terms(aux_weight):
    rng = np.random.default_rng(1)
    img, txt = rng.normal(size=(48, 6)).astype(np.float32), rng.normal(size=(48, 5)).astype(np.float32)
    out = _fit(_net(), img, txt, rng.integers(0, 3, 48), np.arange(32), np.arange(32, 48), aux_weight=aux_weight)
    for h in out["history"]:  # per-epoch means of each part, weighted by batch size: linear, so the sum holds
        assert h["aux_image"] > 0.1 and h["aux_text"] > 0.1
        assert h["train_loss"] == pytest.approx(h["contrastive"] + aux_weight * (h["aux_image"] + h["aux_text"]),
                                                rel=1e-5)


def test_trained_auxiliary_heads_beat_chance_on_learnable_labels():
    rng = np.random.default_rng(2)
    n, classes = 240, 4
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, 6)) * 3
    img = (centres[labels] + rng.normal(size=(n, 6))).astype(np.float32)
    txt = (img @ rng.normal(size=(6, 5)) + 0.1 * rng.normal(size=(n, 5))).astype(np.float32)
    net = _net(classes=classes)
    _fit(net, img, txt, labels, np.arange(160), np.arange(160, 200), epochs=15, aux_weight=1.0)
    test = np.arange(200, n)
    from cti_repro.evaluation.xmodal_metrics import accuracy

    with torch.no_grad():
        li = net.image_aux(torch.as_tensor(embed_rows(net.embed_image, dense_input(img), test))).numpy()
        lt = net.text_aux(torch.as_tensor(embed_rows(net.embed_text, dense_input(txt), test))).numpy()
    assert accuracy(li, labels[test]) > 80 and accuracy(lt, labels[test]) > 80  # chance: 25%
