"""The frozen CNN both fine-grained models see images through, and its cached features.

One pass of a torchvision ResNet over every product image yields two cached parts (in the
package's feature cache, :func:`cti_repro.features.feature_cache_dir`, with its checksums):

==================  ===========================================================================
part                what
==================  ===========================================================================
``cnn_levels``      MLF's multi-level features: the global average of each of the 4 ResNet stages,
                    concatenated [N, C1+C2+C3+C4] (resnet18: 64+128+256+512 = 960)
``cnn_kaleido``     Kaleido-BERT's patches: the last stage's map average-pooled to k x k grids,
                    k = 1..levels, row-major per grid [N, sum k^2, C4] (levels 5: 55 patches), float16
==================  ===========================================================================

ImageNet weights come from torchvision's own cache; when they cannot be loaded the refusal is
the CLIP encoder's (:class:`cti_repro.encoders.WeightsUnavailableError`) unless
``finegrained.cnn.allow_random`` is true (offline profiles), and then the identity says
``pretrained: false`` so every page labels the rows. Unreadable images give zero rows.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cti_repro.config import StudyConfig
from cti_repro.data.catalogue import Catalogue
from cti_repro.encoders import WeightsUnavailableError, _ImageDataset

STAGE_CHANNELS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (64, 128, 256, 512), "resnet34": (64, 128, 256, 512), "resnet50": (256, 512, 1024, 2048),
}
CACHE_VERSION = 1


def kaleido_patches(levels: int) -> int:
    """Number of kaleido patches of grids 1x1 .. levels x levels: ``sum k^2``."""
    return sum(k * k for k in range(1, levels + 1))


def load_backbone(name: str, pretrained: bool, allow_random: bool, seed: int = 0) -> tuple[Any, dict]:
    """A torchvision ResNet in eval mode and its identity (name, weights, pretrained).

    Raises:
        WeightsUnavailableError: ImageNet weights wanted, not loadable, and ``allow_random`` false.
    """
    import torch
    from torchvision import models

    if name not in STAGE_CHANNELS:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(STAGE_CHANNELS)}")
    ident: dict[str, Any] = {"name": f"torchvision {name}", "weights": "IMAGENET1K_V1", "pretrained": True}
    if pretrained:
        try:
            # torchvision announces its download on stdout, which carries the command's JSON: keep it on stderr
            with contextlib.redirect_stdout(sys.stderr):
                net = getattr(models, name)(weights="IMAGENET1K_V1")
            return net.eval(), ident
        except Exception as exc:  # offline, no cached file, hash mismatch: many types
            if not allow_random:
                raise WeightsUnavailableError(
                    f"ImageNet weights of torchvision {name} are not available ({type(exc).__name__}: "
                    f"{str(exc)[:200]}). On a machine with internet run once:\n"
                    f"  python -c \"import torchvision; torchvision.models.{name}(weights='IMAGENET1K_V1')\"\n"
                    "to cache them (~/.cache/torch/hub/checkpoints), or set finegrained.cnn.allow_random: true "
                    "for a pipeline demonstration.") from exc
            print(f"warning: ImageNet weights of {name} unavailable, using RANDOM weights (seed {seed})", file=sys.stderr)
    torch.manual_seed(seed)
    net = getattr(models, name)(weights=None)
    ident.update(weights=f"random(seed={seed})", pretrained=False)
    return net.eval(), ident


def _stages(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    out = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = layer(x)
        out.append(x)
    return out


def multi_level_and_kaleido(net, x, levels: int):
    """``(levels [B, sum C], kaleido [B, sum k^2, C4])`` of a batch of images [B, 3, S, S]."""
    import torch
    import torch.nn.functional as F

    maps = _stages(net, x)
    pooled = torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1)
    last = maps[-1]
    grids = [F.adaptive_avg_pool2d(last, k).flatten(2).transpose(1, 2) for k in range(1, levels + 1)]
    return pooled, torch.cat(grids, dim=1)


def _key(cfg: StudyConfig, catalogue: Catalogue, part: str) -> str:
    from cti_repro.io_utils import stable_hash

    c, k = cfg.finegrained.cnn, cfg.finegrained.kaleido
    spec = {"backbone": c.backbone, "pretrained": c.pretrained, "allow_random": c.allow_random, "size": c.image_size}
    if part == "cnn_kaleido":
        spec["levels"] = k.levels
    return stable_hash({"v": CACHE_VERSION, "part": part, "cnn": spec, "data": catalogue.fingerprint()})


def load_cnn_features(cfg: StudyConfig, catalogue: Catalogue, device: str = "cpu",
                      progress: bool = False) -> tuple[dict[str, np.ndarray], dict, dict]:
    """``cnn_levels`` and ``cnn_kaleido`` of every product, from the feature cache or computed (then cached).

    Returns:
        (part -> array memory-mapped, the CNN's identity, stats: unreadable images, seconds, cache hit).
    """
    import torch
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from cti_repro.features import check_cache_part, feature_cache_dir
    from cti_repro.io_utils import _umask, atomic_write_json, sha256_file

    root = feature_cache_dir(cfg)
    files = {p: (root / f"{p}-{_key(cfg, catalogue, p)}.npy", root / f"{p}-{_key(cfg, catalogue, p)}.json")
             for p in ("cnn_levels", "cnn_kaleido")}
    out, ident, stats = {}, {}, {}
    for part, (npy, meta) in files.items():
        if npy.is_file() and meta.is_file():
            arr, m, problem = check_cache_part(npy, meta, len(catalogue), catalogue.fingerprint())
            if problem is None:
                out[part], ident, stats = arr, m["identity"], {**m.get("stats", {}), "cnn_cache_hit": True}
                continue
            print(f"warning: feature cache {problem}; recomputing", file=sys.stderr)
    if len(out) == len(files):
        return out, ident, stats
    c = cfg.finegrained.cnn
    net, ident = load_backbone(c.backbone, c.pretrained, c.allow_random)
    net.to(device)
    pre = transforms.Compose([transforms.Resize((c.image_size, c.image_size)), transforms.ToTensor(),
                              transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    paths = [catalogue.image_path(i) for i in range(len(catalogue))]
    loader = DataLoader(_ImageDataset(paths, pre, c.image_size), batch_size=c.batch_size, shuffle=False)
    n, levels, c4 = len(paths), cfg.finegrained.kaleido.levels, STAGE_CHANNELS[c.backbone][-1]
    shapes = {"cnn_levels": ((n, sum(STAGE_CHANNELS[c.backbone])), np.float32),
              "cnn_kaleido": ((n, kaleido_patches(levels), c4), np.float16)}
    root.mkdir(parents=True, exist_ok=True)
    # Written batch by batch into memory-mapped temporary files: at the paper's scale the kaleido part
    # alone is 38,921 x 55 x 2048 float16 = 8.8 GB, which must not be held (let alone copied) in memory.
    tmp = {p: files[p][0].with_name(f".{files[p][0].name}.{os.getpid()}.tmp") for p in files}
    try:
        mm = {p: np.lib.format.open_memmap(tmp[p], mode="w+", dtype=dt, shape=shape) for p, (shape, dt) in shapes.items()}
        t0, at, bad = time.perf_counter(), 0, 0
        with torch.inference_mode():
            for x, ok in loader:
                a, b = multi_level_and_kaleido(net, x.to(device), levels)
                keep = ok.to(a.device)[:, None]
                mm["cnn_levels"][at : at + len(x)] = (a.float() * keep).cpu().numpy()
                mm["cnn_kaleido"][at : at + len(x)] = (b.float() * keep[:, :, None]).half().cpu().numpy()
                at, bad = at + len(x), bad + int((~ok).sum())
        stats = {"images_unreadable": bad, "images_total": n, "cnn_seconds": round(time.perf_counter() - t0, 2),
                 "cnn_cache_hit": False}
        for part, (npy, meta) in files.items():
            mm[part].flush()
            del mm[part]
            os.chmod(tmp[part], 0o666 & ~_umask())
            digest = sha256_file(tmp[part])
            os.replace(tmp[part], npy)
            atomic_write_json(meta, {"part": part, "encoder_role": "cnn", "identity": ident, "stats": stats,
                                     "shape": list(shapes[part][0]), "dtype": np.dtype(shapes[part][1]).name,
                                     "sha256": digest, "catalogue": catalogue.fingerprint()})
            out[part] = np.load(npy, mmap_mode="r")
    finally:
        for t in tmp.values():
            t.unlink(missing_ok=True)
    return out, ident, stats


__all__ = ["STAGE_CHANNELS", "kaleido_patches", "load_backbone", "multi_level_and_kaleido", "load_cnn_features"]
