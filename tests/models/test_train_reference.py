"""The training loop's speed work must not move a single bit of the trained weights.

:func:`reference_train` is the loop written the plain way (as ``models/train.py`` was before its
step was made cheap): per step a gather of the batch, a ``torch.autocast`` block, ``zero_grad``,
``backward`` and ``AdamW.step()``; per epoch the validation loss over the same seeded batches,
``ReduceLROnPlateau`` and the best-epoch copy; with frozen plain copies of the InfoNCE and
soft-target losses (the tree losses and the masked / learnt-tau InfoNCE are the package's own). :func:`cti_repro.models.train.train` must give
the same weights (``torch.equal`` on every state-dict tensor) and the same history for both
batch sizes, both heads, every loss and the options that change the step (learnt tau, same-label
masking, attention pooling, bf16 autocast). Feature widths are odd on purpose (no row is
a multiple of 64 bytes, so batch views start unaligned), and the pair counts leave a last batch of one, which both loops drop.
"""

from __future__ import annotations

import copy
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from cti_repro.config import TrainConfig
from cti_repro.models.heads import CtIModel
from cti_repro.models.loss import build_loss
from cti_repro.models.train import PairTensors, decay_groups, train
from cti_repro.study import MODALITIES

DIMS = {"image": 23, "title": 21, "attributes": 19}
CATEGORY_DIM, N_LABELS, N_ATTR_VALUES, MAX_ATTRS = 27, 5, 40, 4


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    out = list(order.split(batch_size))
    if len(out) > 1 and len(out[-1]) < 2:
        out.pop()
    return out


def _gather(data: PairTensors, idx: torch.Tensor):
    return data.category[idx], {k: v[idx] for k, v in data.product.items()}, data.labels[idx]


@torch.no_grad()
def _val_loss(model, data: PairTensors, loss_fn, batch_size: int, amp: bool) -> float:
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64), 0
    for idx in _batches(len(data), batch_size, torch.Generator().manual_seed(0)):
        c_feat, p_feat, labels = _gather(data, idx)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=amp):
            c, p = model(c_feat, p_feat)
        total += loss_fn(c, p, labels).double() * len(idx)
        count += len(idx)
    return float(total) / max(count, 1)


def reference_train(model, train_data, val_data, loss_fn, cfg: TrainConfig, batch_size: int, seed: int,
                    amp: bool) -> list[dict[str, float]]:
    """The plain loop (see the module doc); leaves the best weights in ``model``, returns the history."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as train() on CPU: MKL's results may depend on the thread count
    try:
        opt = torch.optim.AdamW(decay_groups(model, cfg.weight_decay), lr=cfg.lr, fused=True)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=cfg.plateau_patience,
                                                           factor=cfg.plateau_factor)
        gen = torch.Generator().manual_seed(seed)
        best, best_state, history = float("inf"), copy.deepcopy(model.state_dict()), []
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            running, seen = torch.zeros(()), 0
            for idx in _batches(len(train_data), batch_size, gen):
                c_feat, p_feat, labels = _gather(train_data, idx)
                with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=amp):
                    c, p = model(c_feat, p_feat)
                loss = loss_fn(c, p, labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running += loss.detach() * len(idx)
                seen += len(idx)
            val = _val_loss(model, val_data, loss_fn, batch_size, amp)
            history.append({"train_loss": float(running) / seen, "val_loss": val, "lr": opt.param_groups[0]["lr"]})
            sched.step(val)
            if val < best:
                best, best_state = val, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
        return history
    finally:
        torch.set_num_threads(threads)


def _pairs(n: int, seed: int, modalities: tuple[str, ...], attention: bool) -> PairTensors:
    """Most-general-like pairs: few labels, and every pair of a label has the same category feature."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, N_LABELS, (n,), generator=g)
    protos = torch.randn(N_LABELS, CATEGORY_DIM, generator=torch.Generator().manual_seed(99))
    product = {m: torch.randn(n, DIMS[m], generator=g) for m in modalities}
    if attention and "attributes" in product:
        index = torch.randint(0, N_ATTR_VALUES, (n, MAX_ATTRS), generator=g)
        index[torch.rand(n, MAX_ATTRS, generator=g) < 0.3] = -1  # padding, some rows all pads
        product["attributes"] = index
    return PairTensors(category=protos[labels], product=product, labels=labels)


def _plain_infonce(c, p, labels=None, tau: float = 1.0, lam: float = 0.5):
    """Eq. 9 as models/loss.py computed it before the step was made cheap (a frozen copy)."""
    with torch.autocast(device_type=c.device.type, enabled=False):
        c, p = F.normalize(c.float(), dim=-1), F.normalize(p.float(), dim=-1)
        logits = (c @ p.T) / tau
        target = torch.arange(c.shape[0], device=c.device)
        return lam * F.cross_entropy(logits.T, target) + (1.0 - lam) * F.cross_entropy(logits, target)


def _plain_soft(c, p, labels=None, tau: float = 1.0):
    """The public code's soft-target loss, normalised, as models/loss.py computed it (a frozen copy)."""
    with torch.autocast(device_type=c.device.type, enabled=False):
        c, p = F.normalize(c.float(), dim=-1), F.normalize(p.float(), dim=-1)
        logits = (c @ p.T) / tau
        targets = F.softmax((c @ c.T + p @ p.T) / 2 * tau, dim=-1)
        loss_c = (-targets * F.log_softmax(logits, dim=-1)).sum(1)
        loss_p = (-targets.T * F.log_softmax(logits.T, dim=-1)).sum(1)
        return ((loss_c + loss_p) / 2).mean()


def _reference_loss(kind: str, model: CtIModel, mask_same_label: bool, tau: float):
    """The plain losses for the reference loop where a frozen copy exists, else the package's."""
    if kind == "soft":
        return partial(_plain_soft, tau=tau)
    if kind == "infonce" and not mask_same_label and model.logit_scale is None:
        return partial(_plain_infonce, tau=tau)
    return _loss(kind, model, mask_same_label, tau)


def _loss(kind: str, model: CtIModel, mask_same_label: bool, tau: float):
    if kind in ("tree_soft", "tree_margin"):
        d = torch.randint(-1, 3, (N_LABELS, N_LABELS), generator=torch.Generator().manual_seed(5))
        d = torch.maximum(d, d.T)
        d.fill_diagonal_(0)
        return build_loss(kind, tau=tau, label_dist=d)
    if kind == "infonce":
        return build_loss(kind, tau=tau, mask_same_label=mask_same_label, logit_scale=model.logit_scale)
    return build_loss(kind, tau=tau)


CASES = {  # id: (model, head, loss, batch, options)
    "paper-infonce-b8": ("CLIP-I", "paper", "infonce", 8, {}),
    "paper-infonce-tau1-b8": ("CLIP-I", "paper", "infonce", 8, {"tau": 1.0}),  # the study's default
    "paper-soft-tau1-b128": ("CLIP-ITA", "paper", "soft", 128, {"tau": 1.0}),
    "paper-infonce-b128-ita": ("CLIP-ITA", "paper", "infonce", 128, {}),
    "batchnorm-infonce-b8": ("CLIP-IA", "batchnorm", "infonce", 8, {}),
    "batchnorm-soft-b128": ("CLIP-I", "batchnorm", "soft", 128, {}),
    "paper-soft-b8": ("CLIP-IA", "paper", "soft", 8, {}),
    "paper-tree_soft-b8": ("CLIP-ITA", "paper", "tree_soft", 8, {}),
    "batchnorm-tree_margin-b128": ("CLIP-ITA", "batchnorm", "tree_margin", 128, {}),
    "learnt-tau-masked-b8": ("CLIP-I", "paper", "infonce", 8, {"learn_tau": True, "mask_same_label": True}),
    "attention-pool-b8": ("CLIP-ITA", "paper", "infonce", 8, {"attention": True}),
    "normalized-modalities-b8": ("CLIP-ITA", "batchnorm", "infonce", 8, {"normalize_modalities": True}),
    "bf16-autocast-b8": ("CLIP-IA", "paper", "infonce", 8, {"amp": True}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_matches_the_plain_loop_bit_for_bit(case: str):
    name, head, loss_kind, batch, opts = CASES[case]
    mods = MODALITIES[name]
    attention = opts.get("attention", False)
    train_data, val_data = _pairs(297, 1, mods, attention), _pairs(41, 2, mods, attention)  # 297 = 37 * 8 + 1
    cfg = TrainConfig(epochs=3, amp="on" if opts.get("amp") else "off", plateau_patience=0)

    def build() -> CtIModel:
        torch.manual_seed(7)
        model = CtIModel(mods, DIMS, CATEGORY_DIM, head=head, d=16, bn_hidden=32, tau=opts.get("tau", 0.5),
                         learn_tau=opts.get("learn_tau", False), attribute_pool="attention" if attention else "mean",
                         normalize_modalities=opts.get("normalize_modalities", False))
        if attention:
            model.set_attribute_table(torch.randn(N_ATTR_VALUES, DIMS["attributes"],
                                                  generator=torch.Generator().manual_seed(3)))
        return model

    ref = build()
    torch.manual_seed(11)  # dropout draws from the global generator: both loops start from the same state
    tau, masked = opts.get("tau", 0.5), opts.get("mask_same_label", False)
    ref_history = reference_train(ref, train_data, val_data, _reference_loss(loss_kind, ref, masked, tau), cfg, batch, seed=3,
                                  amp=bool(opts.get("amp")))
    fast = build()
    torch.manual_seed(11)
    result = train(fast, train_data, val_data, _loss(loss_kind, fast, masked, tau), cfg, batch, seed=3, progress=False)

    assert all(math.isfinite(h["val_loss"]) for h in ref_history)
    ref_state, fast_state = ref.state_dict(), fast.state_dict()
    assert list(ref_state) == list(fast_state)
    for key, tensor in ref_state.items():
        assert torch.equal(tensor, fast_state[key]), f"{case}: {key} differs from the plain loop"
    assert [(h["train_loss"], h["val_loss"], h["lr"]) for h in result.history] == \
        [(h["train_loss"], h["val_loss"], h["lr"]) for h in ref_history]
    assert result.steps == 3 * (37 if batch == 8 else 3)
