"""One readable training loop for the projection heads (nanoGPT style).

The encoders are frozen, so a "batch" is a set of row indices into feature tensors that already
sit on the device: no DataLoader and no per-batch host work beyond indexing. Per epoch:
shuffle with a seeded generator, step AdamW on the contrastive loss (bf16 autocast on CUDA),
compute the validation loss, step ReduceLROnPlateau on it, and keep the weights with the lowest
validation loss. The validation batches are shuffled once, by a generator of fixed seed
(:data:`VAL_SEED`), and are the same every epoch: in catalogue order a most-general batch of 8
nearly always holds one root, whose loss is ln 8 whatever the model, so the selection would hang
on the few mixed batches. The same seed gives identical weights on CPU.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from cti_repro.config import TrainConfig
from cti_repro.device import amp_context, amp_enabled, device_type
from cti_repro.models.fused_step import LeanFusedAdamW
from cti_repro.models.heads import CtIModel


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN / infinite loss, or never improved on the untrained weights."""


@dataclass
class PairTensors:
    """Features of one split's category-product pairs, on the training device.

    Attributes:
        category: category-encoder features of each pair's label [n, d_c].
        product: product features per modality, each [n, d_m].
        labels: integer category id of each pair [n] (for same-label masking).
    """

    category: Tensor
    product: dict[str, Tensor]
    labels: Tensor

    def __len__(self) -> int:
        return self.category.shape[0]

    def batch(self, idx: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        return self.category[idx], {k: v[idx] for k, v in self.product.items()}, self.labels[idx]

    def batches(
        self, batch_size: int, generator: torch.Generator | None, device: str,
    ) -> list[tuple[Tensor, dict[str, Tensor], Tensor]]:
        """The batches of one pass over the rows: shuffled by ``generator`` (``randperm``; catalogue
        order without one), ``batch_size`` rows each, a last batch of 1 dropped (a contrastive loss
        needs a negative, BatchNorm a second row). Each tensor is gathered once per pass and split
        into views, not gathered per step: a most-general step is a few tiny kernels, so the three
        to five indexing ops per step were a visible share of it."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        if len(sizes) > 1 and sizes[-1] < 2:  # a last batch of 1 is dropped
            sizes.pop()
        if not sizes:
            return []
        order = order[: sum(sizes)].to(device)
        category, labels = self.category[order].split(sizes), self.labels[order].split(sizes)
        product = {k: v[order].split(sizes) for k, v in self.product.items()}
        return [(category[i], {k: v[i] for k, v in product.items()}, labels[i]) for i in range(len(sizes))]


@dataclass
class TrainResult:
    """What a run of :func:`train` produced.

    Attributes:
        history: one dict per epoch (epoch, train_loss, val_loss, lr, seconds).
        best_epoch: epoch (1-based) whose weights were kept.
        best_val_loss: its validation loss.
        device, amp: where and how it ran.
        steps: optimiser steps taken.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    device: str = "cpu"
    amp: bool = False
    steps: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("history", "best_epoch", "best_val_loss", "device", "amp", "steps", "seconds")}


VAL_SEED = 0  # the validation batches' one shuffle: the same for every epoch, model and seed


@torch.no_grad()
def evaluate_loss(
    model: CtIModel, data: PairTensors, loss_fn: Callable, batch_size: int, device: str, amp: bool,
    shuffle_seed: int | None = VAL_SEED,
) -> float:
    """Mean loss over batches of ``data``, weighted by batch size.

    The batches are a permutation by a generator seeded ``shuffle_seed`` (the same batches on every
    call), or catalogue order with ``shuffle_seed=None``.
    """
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    gen = torch.Generator().manual_seed(shuffle_seed) if shuffle_seed is not None else None
    for c_feat, p_feat, labels in data.batches(batch_size, gen, device):
        with amp_context(device, amp):
            c, p = model(c_feat, p_feat)
        total += loss_fn(c, p, labels).double() * len(labels)  # on device: one sync at the end
        count += len(labels)
    return float(total) / max(count, 1)


def train(
    model: CtIModel,
    train_data: PairTensors,
    val_data: PairTensors,
    loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor],
    cfg: TrainConfig,
    batch_size: int,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> TrainResult:
    """Train ``model``'s heads; on return the model holds the best-validation-loss weights.

    Args:
        model: the CtI model (only its heads exist; encoders are frozen upstream).
        train_data, val_data: pair features on ``device``.
        loss_fn: ``fn(c, p, labels) -> loss`` (see :func:`cti_repro.models.loss.build_loss`).
        cfg: epochs, AdamW lr / weight decay, plateau schedule, AMP preference.
        batch_size: pairs per step (8 for most_general in the paper, 128 otherwise).
        seed: seeds the shuffling generator (model init is seeded by the caller).
        device: ``cpu`` or ``cuda``.
        progress: show a tqdm bar over epochs.

    Returns:
        A :class:`TrainResult` with the per-epoch history.

    Raises:
        NonFiniteLossError: a loss became NaN / infinite (the row must fail, not keep the
            untrained start weights and pass as ``status: ok``).
    """
    # bf16 autocast: on CUDA by default; ``amp: on`` also forces it on CPU (how tests cover this path).
    amp = amp_enabled(device, cfg.amp)
    if device_type(device) == "cpu":
        # The heads are tiny: OpenMP threads only add sync overhead (a step was ~12x slower with 2
        # threads on a busy 2-core machine), and one thread makes `cti-repro run` and the batch's
        # single-threaded kernels agree bit for bit.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return _train_loop(model, train_data, val_data, loss_fn, cfg, batch_size, seed, device, progress, amp)
        finally:
            torch.set_num_threads(threads)
    return _train_loop(model, train_data, val_data, loss_fn, cfg, batch_size, seed, device, progress, amp)


def no_decay(name: str, param: Tensor) -> bool:
    """True for a parameter AdamW must not decay: open_clip_train's rule (``main.py``): gains and
    biases (``ndim < 2``), names holding ``bn`` / ``ln`` / ``bias``, and the learnable ``logit_scale``
    (decaying it pulls the temperature towards tau = 1)."""
    return param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups as open_clip_train builds them: ``weight_decay`` 0 for :func:`no_decay`
    parameters, ``weight_decay`` for the rest (weight matrices); frozen parameters left out."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0},
            {"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": weight_decay}]


def _train_loop(
    model: CtIModel, train_data: PairTensors, val_data: PairTensors, loss_fn: Callable, cfg: TrainConfig,
    batch_size: int, seed: int, device: str, progress: bool, amp: bool,
) -> TrainResult:
    """The loop itself (see :func:`train`)."""
    from tqdm.auto import tqdm

    model.to(device)
    # fused AdamW: one kernel per step instead of ~10 per parameter tensor; the heads are tiny,
    # so the optimiser's per-tensor overhead dominated a step (same numbers as the default).
    opt = torch.optim.AdamW(decay_groups(model, cfg.weight_decay), lr=cfg.lr, fused=True)
    lean = LeanFusedAdamW(opt)  # the same update without the optimiser's per-step Python
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", patience=cfg.plateau_patience, factor=cfg.plateau_factor
    )
    gen = torch.Generator().manual_seed(seed)
    result = TrainResult(device=device, amp=amp)
    best_state = copy.deepcopy(model.state_dict())
    t_start = time.perf_counter()
    bar = tqdm(range(1, cfg.epochs + 1), desc="epochs", unit="ep", disable=not progress, file=sys.stderr)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        running, seen = torch.zeros((), device=device), 0
        for c_feat, p_feat, labels in train_data.batches(batch_size, gen, device):
            with amp_context(device, amp):
                c, p = model(c_feat, p_feat)
            loss = loss_fn(c, p, labels)
            lean.zero_grad()
            loss.backward()
            lean.step()
            running += loss.detach() * len(labels)  # stays on device: no sync per step
            seen += len(labels)
            result.steps += 1
        train_loss = float(running) / max(seen, 1)
        val_loss = evaluate_loss(model, val_data, loss_fn, batch_size, device, amp)
        lr = opt.param_groups[0]["lr"]
        sched.step(val_loss)
        result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                               "seconds": round(time.perf_counter() - t0, 4)})
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            # NaN is never "better than inf": without this the untrained weights would be kept
            raise NonFiniteLossError(
                f"epoch {epoch}: training loss {train_loss}, validation loss {val_loss} is not finite "
                "(NaN/inf in the features, or training diverged: check the feature cache, lower train.lr)")
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", lr=f"{lr:.1e}")
    if result.best_epoch == 0:  # unreachable with finite losses; never report untrained weights as trained
        raise NonFiniteLossError(f"no epoch of {cfg.epochs} reached a finite validation loss")
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = round(time.perf_counter() - t_start, 3)
    return result
