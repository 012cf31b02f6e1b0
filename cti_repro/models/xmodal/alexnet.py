"""Rubio et al.'s (2017) image branch: torchvision's AlexNet at 227 x 227, its ImageNet weights and its fc7 layer.

Weights are found like the CLIP weights (:func:`cti_repro.encoders.load_clip`): ``imagenet`` means
torchvision's ``IMAGENET1K_V1`` checkpoint, read from the torch hub cache
(``~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth``) and downloaded into it once when
the network is reachable; a path means that state-dict file; ``random`` means seeded random
weights. When ImageNet weights cannot be loaded, ``allow_random`` decides: random weights with a
warning, recorded as ``random(seed=...)`` (the offline profiles), or
:class:`~cti_repro.encoders.WeightsUnavailableError` (the ``xmarket`` profile).

Cache the weights once on a machine with internet::

    python -c "import cti_repro, torchvision; torchvision.models.alexnet(weights='IMAGENET1K_V1')"

``fc7`` is the 4096-d output of AlexNet's second fully connected layer (after its ReLU); the
``alexnet_fc7`` image branch trains only the layer that replaces fc8 (4096 -> 128) on these frozen
features, the ``alexnet`` branch trains the whole CNN (:class:`cti_repro.models.xmodal.two_branch.AlexNetBranch`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import cti_repro  # noqa: F401  (its torchvision shim, cti_repro.tv_compat, runs on import)

ALEXNET_INPUT = 227  # Rubio et al.: "converts a 227 x 227 pixel image"
FC7_DIM = 4096
IMAGENET = "imagenet"
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's ImageNet normalisation
# os.path.basename(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url) (a test checks it): spelled out
# so that a row's feature-cache key does not import torchvision (~3 s: torchvision.ops pulls in torch._dynamo)
IMAGENET_FILE = "alexnet-owt-7be5be79.pth"
DOWNLOAD_COMMAND = "python -c \"import cti_repro, torchvision; torchvision.models.alexnet(weights='IMAGENET1K_V1')\""


def imagenet_checkpoint() -> Path:
    """Where torchvision caches AlexNet's ``IMAGENET1K_V1`` weights (the file may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE


def _weights_file(weights: str) -> Path:
    return imagenet_checkpoint() if weights == IMAGENET else Path(weights).expanduser()


def alexnet_weights_key(weights: str) -> dict[str, Any] | str:
    """What AlexNet features depend on beyond the name: the checkpoint on disk (name, size, mtime), or
    ``random`` when there is none, so a random-weight cache never serves a run that now has real weights."""
    if weights == "random":
        return "random"
    f = _weights_file(weights)
    if not f.is_file():
        return "random"
    st = f.stat()
    return {"file": f.name, "size": st.st_size, "mtime": int(st.st_mtime)}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") == "1" or os.environ.get("CTI_REPRO_OFFLINE", "") == "1"


def load_alexnet(weights: str = IMAGENET, allow_random: bool = False, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """torchvision's AlexNet with ImageNet (``imagenet``), file (a path) or ``random`` weights, in eval mode.

    Args:
        weights: ``imagenet``, a state-dict file, or ``random``.
        allow_random: fall back to random weights when the requested ones cannot be loaded.
        seed: the seed of random weights.

    Returns:
        ``(net, identity)``; identity: ``name``, ``weights`` (``ImageNet (IMAGENET1K_V1)``, the file,
        or ``random(seed=S)``), ``pretrained``, and for loaded weights ``checkpoint`` and ``sha256``.

    Raises:
        WeightsUnavailableError: the weights cannot be loaded and ``allow_random`` is false.
    """
    from torchvision.models import AlexNet_Weights, alexnet

    from cti_repro.encoders import WeightsUnavailableError
    from cti_repro.io_utils import sha256_file

    torch.manual_seed(seed)
    net = alexnet(weights=None)
    identity: dict[str, Any] = {"name": "AlexNet (torchvision)", "pretrained": False, "weights": f"random(seed={seed})"}
    if weights != "random":
        f = _weights_file(weights)
        try:
            if f.is_file():
                state = torch.load(f, map_location="cpu", weights_only=True)
            elif weights == IMAGENET and not _offline():
                state = AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
            else:
                raise FileNotFoundError(f"{f}: no such file" + (" (offline: HF_HUB_OFFLINE=1)" if weights == IMAGENET else ""))
            net.load_state_dict(state)
            identity.update(pretrained=True, weights="ImageNet (IMAGENET1K_V1)" if weights == IMAGENET else str(f),
                            checkpoint=str(f), sha256=sha256_file(f) if f.is_file() else None)
        except Exception as exc:  # offline, missing or damaged file: many types
            if not allow_random:
                raise WeightsUnavailableError(
                    f"AlexNet weights {weights!r} are not available ({type(exc).__name__}: {str(exc)[:200]}). "
                    f"On a machine with internet run once:\n  {DOWNLOAD_COMMAND}\nto cache them, or set "
                    "xmodal.alexnet.weights to a local state-dict file, or xmodal.alexnet.allow_random: true for a "
                    "pipeline demonstration.") from exc
            print(f"warning: AlexNet weights {weights!r} unavailable, using RANDOM weights (seed {seed})", file=sys.stderr)
            torch.manual_seed(seed)
            net = alexnet(weights=None)
    identity["architecture"] = {"fc7": FC7_DIM, "classifier": "Dropout-fc6-ReLU-Dropout-fc7-ReLU-fc8"}
    return net.eval(), identity


def fc7(net: nn.Module, x: Tensor) -> Tensor:
    """AlexNet's fc7 activations [B, 4096] (convolutions, pooling, fc6, fc7 with their ReLUs; dropout per mode)."""
    h = torch.flatten(net.avgpool(net.features(x)), 1)
    return net.classifier[:6](h)


def preprocess(size: int = ALEXNET_INPUT):
    """PIL image -> [3, size, size] tensor: resized to ``size`` x ``size`` (bilinear), ImageNet-normalised."""
    from PIL import Image

    mean, std = torch.tensor(_MEAN).view(3, 1, 1), torch.tensor(_STD).view(3, 1, 1)

    def run(im) -> Tensor:
        a = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
        return (torch.from_numpy(a).permute(2, 0, 1) - mean) / std

    return run


@torch.inference_mode()
def encode_fc7(net: nn.Module, paths: list, size: int = ALEXNET_INPUT, batch_size: int = 64, device: str = "cpu",
               progress: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """fc7 features of the images at ``paths``.

    Returns:
        ``(features float32 [N, 4096], ok bool [N], seconds)``; rows of missing or unreadable images are zero.
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from cti_repro.encoders import _ImageDataset

    t0 = time.perf_counter()
    net = net.to(device).eval()
    loader = DataLoader(_ImageDataset(paths, preprocess(size), size), batch_size=batch_size, shuffle=False)
    feats, oks = [], []
    for x, ok in tqdm(loader, desc="AlexNet fc7", unit="batch", file=sys.stderr, disable=not progress):
        feats.append(fc7(net, x.to(device)).float().cpu())
        oks.append(ok)
    if not feats:
        return np.zeros((0, FC7_DIM), np.float32), np.zeros(0, bool), 0.0
    out, ok = torch.cat(feats).numpy().astype(np.float32), torch.cat(oks).numpy().astype(bool)
    out[~ok] = 0.0
    return out, ok, round(time.perf_counter() - t0, 2)


__all__ = ["ALEXNET_INPUT", "FC7_DIM", "IMAGENET", "IMAGENET_FILE", "DOWNLOAD_COMMAND", "imagenet_checkpoint", "alexnet_weights_key",
           "load_alexnet", "fc7", "preprocess", "encode_fc7"]
