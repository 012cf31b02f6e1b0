"""Rubio et al.'s (2017) two-branch joint embedding of product images and texts, and its training loop.

::

    image branch:  AlexNet (227 x 227) frozen up to fc7, fc8 -> 128 trained  (alexnet_fc7, the default)
                   or the whole AlexNet trained, fc8 -> 128                  (alexnet)
                   or MLP over cached frozen CLIP image features -> 128      (features: our variant)
    text branch:   MLP over word2vec (or bag-of-words) text features -> 128
    both outputs are L2-normalised: v_I, v_T; optional auxiliary heads Linear(128, C) on each side
    loss:          Hadsell contrastive loss + aux_weight * (CE_image + CE_text)   (loss.py)

Retrieval ranks by cosine of v_I and v_T, which on unit vectors orders candidates exactly as the
loss's Euclidean distance does (``||a - b||**2 = 2 - 2 a.b``). A "batch" is a set of catalogue
rows; ``image_input(rows)`` / ``text_input(rows)`` turn them into tensors (feature rows, sparse
bag-of-words rows densified per batch, or decoded images), so features never need to fit on the
device at once.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cti_repro.models.train import VAL_SEED, NonFiniteLossError
from cti_repro.models.xmodal.loss import two_branch_loss

InputFn = Callable[[np.ndarray], Tensor]


class MLPBranch(nn.Module):
    """``Linear -> ReLU -> Dropout -> Linear -> ReLU -> Dropout -> Linear``: d_in -> hidden -> hidden -> d_out."""

    def __init__(self, d_in: int, d_out: int = 128, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, d_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class AlexNetBranch(nn.Module):
    """torchvision's AlexNet trained end to end, its last layer (fc8) replaced by Linear(4096, d_out).

    Takes [B, 3, S, S] images (S = 227 in the paper; its adaptive pooling accepts S >= 63). Starts
    from :func:`cti_repro.models.xmodal.alexnet.load_alexnet`'s weights; ``identity`` records which.
    """

    def __init__(self, d_out: int = 128, weights: str = "random", allow_random: bool = True, seed: int = 0) -> None:
        super().__init__()
        from cti_repro.models.xmodal.alexnet import load_alexnet

        self.net, self.identity = load_alexnet(weights, allow_random, seed)
        self.net.classifier[-1] = nn.Linear(self.net.classifier[-1].in_features, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Fc8Branch(nn.Module):
    """AlexNet's replaced last layer alone, Linear(4096, d_out), over frozen fc7 features
    (:func:`cti_repro.models.xmodal.alexnet.encode_fc7`): the ``alexnet_fc7`` image branch."""

    def __init__(self, d_in: int = 4096, d_out: int = 128) -> None:
        super().__init__()
        self.fc8 = nn.Linear(d_in, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc8(x)


class TwoBranchNet(nn.Module):
    """Image and text branches into one space, with optional auxiliary category heads.

    Args:
        image_branch: module mapping image inputs to [B, d].
        text_branch: module mapping text features to [B, d].
        d: the joint space's size.
        n_classes: categories the auxiliary heads predict; 0 = no heads (the ``-noaux`` ablation).
    """

    def __init__(self, image_branch: nn.Module, text_branch: nn.Module, d: int = 128, n_classes: int = 0) -> None:
        super().__init__()
        self.image_branch, self.text_branch, self.d, self.n_classes = image_branch, text_branch, d, n_classes
        self.image_aux = nn.Linear(d, n_classes) if n_classes else None
        self.text_aux = nn.Linear(d, n_classes) if n_classes else None

    def embed_image(self, x: Tensor) -> Tensor:
        return F.normalize(self.image_branch(x).float(), dim=-1)

    def embed_text(self, x: Tensor) -> Tensor:
        return F.normalize(self.text_branch(x).float(), dim=-1)

    def forward(self, img: Tensor, txt: Tensor) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(v_I, v_T, image logits or None, text logits or None)``."""
        v_i, v_t = self.embed_image(img), self.embed_text(txt)
        if self.image_aux is None:
            return v_i, v_t, None, None
        return v_i, v_t, self.image_aux(v_i), self.text_aux(v_t)

    def describe(self) -> dict[str, Any]:
        return {"dim": self.d, "aux_classes": self.n_classes,
                "image_branch": type(self.image_branch).__name__, "text_branch": type(self.text_branch).__name__,
                "params": sum(p.numel() for p in self.parameters()),
                "params_image_branch": sum(p.numel() for p in self.image_branch.parameters()),
                "params_text_branch": sum(p.numel() for p in self.text_branch.parameters())}


def _batches(rows: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Batches of ``rows`` (shuffled when ``rng``); a trailing batch of 1 is dropped (no negative)."""
    order = rows[rng.permutation(len(rows))] if rng is not None else rows
    out = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return out[:-1] if len(out) > 1 and len(out[-1]) < 2 else out


def _step_loss(net: TwoBranchNet, image_input: InputFn, text_input: InputFn, labels: Tensor, rows: np.ndarray,
               margin: float, aux_weight: float) -> tuple[Tensor, dict[str, Tensor]]:
    v_i, v_t, li, lt = net(image_input(rows), text_input(rows))
    return two_branch_loss(v_i, v_t, labels[torch.as_tensor(rows, device=labels.device)], li, lt, margin, aux_weight)


def train_two_branch(
    net: TwoBranchNet, image_input: InputFn, text_input: InputFn, labels: Tensor, train_rows: np.ndarray,
    val_rows: np.ndarray, epochs: int, lr: float, weight_decay: float, batch_size: int, margin: float,
    aux_weight: float, seed: int = 0, device: str = "cpu", progress: bool = False,
) -> dict[str, Any]:
    """AdamW on the two-branch loss; keeps the weights of the epoch with the lowest validation loss.

    As in the CtI loop (:mod:`cti_repro.models.train`): the validation batches are one shuffle of
    ``val_rows`` by a generator seeded :data:`~cti_repro.models.train.VAL_SEED`, the same every
    epoch (catalogue order puts one category per batch, and the auxiliary heads' loss then measures
    the batch, not the model), and a non-finite loss raises instead of keeping the initial weights.

    Args:
        net: the network (moved to ``device``).
        image_input, text_input: catalogue rows -> input tensors on ``device``.
        labels: auxiliary category id of every catalogue row, on ``device``.
        train_rows, val_rows: catalogue rows of the two splits (an empty ``val_rows``: the last epoch is kept).
        epochs, lr, weight_decay, batch_size: the optimisation.
        margin, aux_weight: the loss (:func:`cti_repro.models.xmodal.loss.two_branch_loss`).
        seed: shuffling seed (initialise ``net`` under ``torch.manual_seed`` before calling).
        device: ``cpu`` or ``cuda``.
        progress: print one line per epoch to stderr.

    Returns:
        ``{"history": [{epoch, train_loss, val_loss, contrastive, aux_image, aux_text, seconds}],
        "best_epoch", "best_val_loss", "steps", "seconds", "device"}``.

    Raises:
        NonFiniteLossError: a training or validation loss is NaN / infinite.
    """
    net.to(device)
    # fused: one kernel per step instead of ~10 per parameter (7 -> 1.5 ms of a ~20 ms step on one CPU thread)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay,
                            fused=torch.device(device).type in ("cpu", "cuda"))
    rng = np.random.default_rng(seed)
    val_batches = _batches(np.asarray(val_rows), batch_size, np.random.default_rng(VAL_SEED))
    history, best, best_state, steps, t_start = [], (float("inf"), 0), copy.deepcopy(net.state_dict()), 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        net.train()
        sums: dict[str, float] = {}
        seen = 0
        for rows in _batches(np.asarray(train_rows), batch_size, rng):
            loss, parts = _step_loss(net, image_input, text_input, labels, rows, margin, aux_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            seen += len(rows)
            for k, v in {"train_loss": loss, **parts}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(rows)
        net.eval()
        val_total, val_n = 0.0, 0
        with torch.no_grad():
            for rows in val_batches:
                val_total += float(_step_loss(net, image_input, text_input, labels, rows, margin, aux_weight)[0]) * len(rows)
                val_n += len(rows)
        val = val_total / val_n if val_n else float("nan")
        entry = {"epoch": epoch, **{k: v / max(seen, 1) for k, v in sums.items()}, "val_loss": val,
                 "seconds": round(time.perf_counter() - t0, 3)}
        history.append(entry)
        if progress:
            print(f"epoch {epoch}: train {entry['train_loss']:.4f} val {val:.4f}", file=sys.stderr, flush=True)
        if not (math.isfinite(entry.get("train_loss", 0.0)) and (math.isfinite(val) or not val_n)):
            # NaN is never "better than inf": without this the untrained weights would be kept as "best"
            raise NonFiniteLossError(
                f"epoch {epoch}: training loss {entry['train_loss']}, validation loss {val} is not finite "
                "(NaN/inf in the features, or training diverged: lower xmodal.lr)")
        if not val_n or val < best[0]:
            best, best_state = (val, epoch), copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval()
    return {"history": history, "best_epoch": best[1], "best_val_loss": best[0], "steps": steps,
            "seconds": round(time.perf_counter() - t_start, 3), "device": device}


@torch.no_grad()
def embed_rows(fn: Callable[[Tensor], Tensor], inputs: InputFn, rows: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """``fn(inputs(batch))`` over ``rows`` in batches, as one float32 array."""
    out = [fn(inputs(rows[i : i + batch_size])).float().cpu() for i in range(0, len(rows), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def dense_input(array: Any, device: str = "cpu") -> InputFn:
    """Rows of a dense array (a memory-mapped feature file included) or a scipy sparse matrix as tensors."""
    import scipy.sparse as sp

    if sp.issparse(array):
        csr = array.tocsr()
        return lambda rows: torch.as_tensor(csr[rows].toarray(), dtype=torch.float32, device=device)
    return lambda rows: torch.as_tensor(np.asarray(array[rows]), dtype=torch.float32, device=device)


def image_file_input(paths: list, size: int = 227, device: str = "cpu") -> InputFn:
    """Decode, resize to ``size`` x ``size`` and ImageNet-normalise the images of ``rows`` (AlexNet input,
    :func:`cti_repro.models.xmodal.alexnet.preprocess`).

    An unreadable file (the task excludes those, see :mod:`cti_repro.data.xmodal_pairs`) gives a
    zero image rather than an exception.
    """
    from PIL import Image

    from cti_repro.models.xmodal.alexnet import preprocess

    prep = preprocess(size)

    def load(i: int) -> Tensor:
        try:
            with Image.open(paths[i]) as im:
                return prep(im)
        except Exception:  # missing / truncated: zero input
            return torch.zeros(3, size, size)

    return lambda rows: torch.stack([load(int(i)) for i in rows]).to(device)


__all__ = ["MLPBranch", "AlexNetBranch", "Fc8Branch", "TwoBranchNet", "train_two_branch", "embed_rows", "dense_input",
           "image_file_input"]
