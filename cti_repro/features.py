"""Frozen encoders and the on-disk feature cache.

Every model in the study works on features of frozen encoders (``book/deviations.md`` row 13), so
each feature is computed once per (encoder, preprocessing, catalogue) and cached as ``.npy``
files that load memory-mapped:

========================  ===================================================================
part                      what
========================  ===================================================================
``image``                 open_clip image embedding of each product image [N, d_i]
``title``                 sentence-transformers embedding of each title [N, d_t]
``attributes``            mean of the embeddings of a product's attribute strings (eq. 5) [N, d_t]
``category``              text embedding of every category name in the catalogue [C, d_t]
``clip_category``         CLIP text-tower embedding of prompt(category) [C, d_i]
``attribute_values``      (ragged, on request) embedding of each *unique* attribute string [U, d_t]
``attribute_index``       (ragged) row in ``attribute_values`` of each attribute, catalogue order [M]
``attribute_offsets``     (ragged) product i's attributes are ``index[offsets[i]:offsets[i+1]]`` [N+1]
========================  ===================================================================

The ragged parts feed ``model.attribute_pool: attention`` (an extension); they are not in the
default :data:`PARTS`. Unique strings + index, not one row per attribute: at the paper's scale
(228,368 attributes, 157,049 unique, MPNet d = 768, float32) the values take 157,049 x 768 x 4 B
= 482 MB plus 0.9 MB of int32 index, against 701 MB for one row per attribute.

Text is encoded once per *unique* string (attribute bullets repeat a lot). Images that are
missing or cannot be decoded get a zero vector; they are counted, never fatal.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cti_repro.config import StudyConfig
from cti_repro.data.catalogue import Catalogue
from cti_repro.device import amp_context, pick_device
from cti_repro.clip_weights import (
    _activation, _register_custom_configs, cached_checkpoint, clip_pretrained_cfg, image_weights_key,
)
from cti_repro.io_utils import atomic_write_bytes, atomic_write_json, stable_hash

PARTS = ("image", "title", "attributes", "category", "clip_category")
RAGGED_PARTS = ("attribute_values", "attribute_index", "attribute_offsets")
CACHE_VERSION = 1


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be loaded (offline, not cached) and random ones are not allowed."""


# ---- encoders --------------------------------------------------------------------------------
def load_clip(model: str, pretrained: str, allow_random: bool, device: str = "cpu", seed: int = 0):
    """Build an open_clip model with its own preprocessing.

    Args:
        model: open_clip architecture name (``ViT-B-32``; ``Tiny-ViT-32`` ships with this package).
        pretrained: open_clip pretrained tag, a local checkpoint path, or ``none``.
        allow_random: fall back to random weights when the pretrained ones cannot be loaded.
        device: where to put the model.
        seed: seed for random initialisation (so random features are reproducible).

    The architecture is the one the weights need: open_clip 3.3 builds ``ViT-B-32`` with
    ``nn.GELU``, while its pretrained config marks the ``openai`` tag (and others) ``quick_gelu``
    and ``create_model`` only warns on a mismatch; so ``force_quick_gelu`` is taken from the tag's
    pretrained config, for any model and tag.

    Returns:
        (model, preprocess, tokenizer, identity) where identity records name, weights, whether
        they are pretrained, the ``architecture`` built (name, activation) and, for pretrained
        weights, the ``checkpoint`` file and its ``sha256``.

    Raises:
        WeightsUnavailableError: weights missing and ``allow_random`` is false.
    """
    import open_clip
    import torch

    _register_custom_configs()
    identity: dict[str, Any] = {"name": model, "weights": pretrained, "pretrained": False}
    tag = None if pretrained.lower() in ("", "none", "random") else pretrained
    torch.manual_seed(seed)
    if tag is not None:
        try:
            quick = bool(clip_pretrained_cfg(model, tag).get("quick_gelu", False))
            net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=tag, device=device,
                                                                       force_quick_gelu=quick)
            identity["pretrained"] = True
            ckpt = cached_checkpoint(model, tag)
            if ckpt is not None:
                from cti_repro.io_utils import sha256_file

                identity.update(checkpoint=str(ckpt), sha256=sha256_file(ckpt))
        except Exception as exc:  # hub errors, missing file, offline mode: many types
            if not allow_random:
                raise WeightsUnavailableError(
                    f"open_clip weights {model}/{pretrained} are not available ({type(exc).__name__}: "
                    f"{str(exc)[:200]}). On a machine with internet run once:\n"
                    f"  python -c \"import open_clip; open_clip.create_model_and_transforms('{model}', "
                    f"pretrained='{pretrained}')\"\n"
                    "to cache them (unset HF_HUB_OFFLINE for that command), or set "
                    "encoders.image.pretrained to a local checkpoint file, or set "
                    "encoders.image.allow_random: true for a pipeline demonstration."
                ) from exc
            print(f"warning: {model}/{pretrained} unavailable, using RANDOM weights (seed {seed})", file=sys.stderr)
            torch.manual_seed(seed)
            tag = None
    if tag is None:
        net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None, device=device)
        identity.update(weights=f"random(seed={seed})", pretrained=False)
    net.eval()
    identity["architecture"] = {"name": model, "activation": _activation(net)}
    return net, preprocess, open_clip.get_tokenizer(model), identity


def load_text_encoder(name: str, device: str = "cpu"):
    """Load a sentence-transformers model (offline names resolved by :mod:`offline_models`).

    Returns:
        (model, identity)
    """
    from sentence_transformers import SentenceTransformer

    from cti_repro.offline_models import resolve_text_model

    path, identity = resolve_text_model(name)
    return SentenceTransformer(path, device=device), identity


# ---- image features --------------------------------------------------------------------------
class _ImageDataset:
    """Decodes and preprocesses one image per item; a failure yields a flag, not an exception."""

    def __init__(self, paths: list[Path | None], preprocess, size: int) -> None:
        self.paths, self.preprocess, self.size = paths, preprocess, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import torch
        from PIL import Image

        p = self.paths[i]
        try:
            if p is None:
                raise FileNotFoundError
            with Image.open(p) as im:
                return self.preprocess(im.convert("RGB")), True
        except Exception:  # missing, truncated or not an image: counted by the caller
            return torch.zeros(3, self.size, self.size), False


def encode_images(
    net, preprocess, paths: list[Path | None], batch_size: int = 64, num_workers: int = 0, device: str = "cpu",
    amp: bool | None = None, pin_memory: bool | None = None, progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Image embeddings of ``paths``.

    Decoding and preprocessing run in ``num_workers`` DataLoader processes; batches go to
    ``device`` from pinned memory (default: on CUDA) with non-blocking copies, and the model runs
    under bf16 autocast (default: on CUDA; ``amp=True`` forces it, e.g. on CPU in tests).

    Returns:
        (features float32 [N, d], ok bool [N]); rows of unreadable images are zero.
    """
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    size = net.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    pin = str(device).startswith("cuda") if pin_memory is None else bool(pin_memory)
    loader = DataLoader(
        _ImageDataset(paths, preprocess, size), batch_size=batch_size, num_workers=num_workers,
        pin_memory=pin and torch.cuda.is_available(), shuffle=False,
        prefetch_factor=4 if num_workers > 0 else None, persistent_workers=False,
    )
    feats, oks = [], []
    with torch.inference_mode(), amp_context(device, amp):
        for x, ok in tqdm(loader, desc="image features", unit="batch", file=sys.stderr, disable=not progress):
            emb = net.encode_image(x.to(device, non_blocking=True)).float()
            feats.append(emb)  # stays on the device: one sync at the end, not one per batch
            oks.append(ok)
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, bool)
    out = torch.cat(feats).cpu().numpy().astype(np.float32)
    ok = torch.cat(oks).numpy().astype(bool)
    out[~ok] = 0.0
    return out, ok


def encode_clip_text(
    net, tokenizer, texts: list[str], batch_size: int = 256, device: str = "cpu", amp: bool | None = None,
) -> np.ndarray:
    """CLIP text-tower embeddings (for zero-shot CLIP queries); ``amp`` as in :func:`encode_images`."""
    import torch

    out = []
    with torch.inference_mode(), amp_context(device, amp):
        for i in range(0, len(texts), batch_size):
            tok = tokenizer(texts[i : i + batch_size]).to(device, non_blocking=True)
            out.append(net.encode_text(tok).float())
    return torch.cat(out).cpu().numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)


def encode_unique(model, texts: list[str], batch_size: int = 128) -> tuple[np.ndarray, dict[str, int]]:
    """Encode each distinct string once.

    Returns:
        (embeddings [U, d] of the unique strings, index of each string in that array)
    """
    uniq = sorted(set(texts))
    index = {t: i for i, t in enumerate(uniq)}
    emb = model.encode(uniq, batch_size=batch_size, show_progress_bar=len(uniq) > batch_size,
                       convert_to_numpy=True)
    return np.asarray(emb, dtype=np.float32), index


def mean_attribute_embeddings(attributes: list[list[str]], emb: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """Eq. 5: h_a = (1/n) sum_i f_a(x_a,i), per product; zero for a product with no attribute."""
    n, d = len(attributes), emb.shape[1]
    counts = np.array([len(a) for a in attributes])
    rows = np.repeat(np.arange(n), counts)
    cols = np.array([index[a] for aa in attributes for a in aa], dtype=np.int64)
    out = np.zeros((n, d), np.float64)
    np.add.at(out, rows, emb[cols])
    out /= np.maximum(counts, 1)[:, None]
    return out.astype(np.float32)


def ragged_attributes(attributes: list[list[str]], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(value row of every attribute [M] int32, offsets [N + 1] int64) of the ragged cache parts."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in attributes])]).astype(np.int64)
    return np.array([index[a] for aa in attributes for a in aa], dtype=np.int32), offsets


def padded_rows(index: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Value rows of the attributes of products ``rows``, padded with -1: [len(rows), max count] int64."""
    starts, ends = np.asarray(offsets)[rows], np.asarray(offsets)[np.asarray(rows) + 1]
    width = int((ends - starts).max()) if len(rows) else 0
    out = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
    for i, (a, b) in enumerate(zip(starts, ends)):
        out[i, : b - a] = index[a:b]
    return out


# ---- the cache -------------------------------------------------------------------------------
@dataclass
class FeatureSet:
    """Features of one catalogue.

    Attributes:
        arrays: part name -> array (memory-mapped when read from the cache).
        categories: category names, aligned with the rows of ``category`` / ``clip_category``.
        identities: encoder identities (name, weights, pretrained) per encoder.
        stats: counts such as images that could not be read.
        cache_hits: parts read from the cache (not recomputed) in this call.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    identities: dict[str, dict] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    cache_hits: list[str] = field(default_factory=list)

    def __getitem__(self, part: str) -> np.ndarray:
        return self.arrays[part]

    def category_index(self) -> dict[str, int]:
        """Row of each category name in the ``category`` / ``clip_category`` parts."""
        return {c: i for i, c in enumerate(self.categories)}


def _part_key(cfg: StudyConfig, catalogue: Catalogue, part: str, device: str = "cpu") -> str:
    from cti_repro.device import amp_enabled

    enc = cfg.encoders
    if part in ("image", "clip_category"):
        spec = {"model": enc.image.model, "pretrained": enc.image.pretrained, "allow_random": enc.image.allow_random,
                **image_weights_key(enc.image.model, enc.image.pretrained),
                "precision": "bf16" if amp_enabled(device, None) else "fp32"}  # encode_images' autocast
        if part == "clip_category":
            spec["prompt"] = enc.clip_prompt
    else:
        spec = {"model": enc.text.model}
    return stable_hash({"v": CACHE_VERSION, "part": part, "enc": spec, "data": catalogue.fingerprint()})


def feature_cache_dir(cfg: StudyConfig) -> Path:
    """``<cache_dir>/features``: one ``.npy`` + ``.json`` per part and key."""
    return cfg.path(cfg.cache_dir) / "features"


def load_features(
    cfg: StudyConfig, catalogue: Catalogue, parts: tuple[str, ...] = PARTS, device: str | None = None,
) -> FeatureSet:
    """Features of ``catalogue`` for ``parts``, from the cache or computed (then cached).

    Args:
        cfg: the study config (encoders, cache folder).
        catalogue: the catalogue (its fingerprint is part of every cache key).
        parts: subset of :data:`PARTS`.
        device: override the device (default: CUDA if available).

    Returns:
        A :class:`FeatureSet`; ``cache_hits`` lists parts served from the cache.
    """
    unknown = set(parts) - set(PARTS) - set(RAGGED_PARTS)
    if unknown:
        raise ValueError(f"unknown feature part(s) {sorted(unknown)}; expected some of {PARTS + RAGGED_PARTS}")
    device = device or pick_device(cfg.train.device)
    root = feature_cache_dir(cfg)
    fs = FeatureSet(categories=sorted({c for p in catalogue.paths for c in p}))
    todo = []
    for part in parts:
        key = _part_key(cfg, catalogue, part, device)
        npy, meta = root / f"{part}-{key}.npy", root / f"{part}-{key}.json"
        if npy.is_file() and meta.is_file():
            rows = {"category": len(fs.categories), "clip_category": len(fs.categories), "attribute_values": None,
                    "attribute_index": None, "attribute_offsets": len(catalogue) + 1}.get(part, len(catalogue))
            arr, m, problem = check_cache_part(npy, meta, rows, catalogue.fingerprint())
            if problem is None:
                fs.arrays[part] = arr
                fs.identities[m["encoder_role"]] = m["identity"]
                fs.stats.update(m.get("stats", {}))
                fs.cache_hits.append(part)
                continue
            print(f"warning: feature cache {problem}; recomputing {part}", file=sys.stderr)
        todo.append((part, npy, meta))
    if not todo:
        return fs

    need = {p for p, _, _ in todo}
    computed: dict[str, tuple[np.ndarray, str, dict, dict]] = {}
    if need & {"image", "clip_category"}:
        ic = cfg.encoders.image
        net, preprocess, tok, ident = load_clip(ic.model, ic.pretrained, ic.allow_random, device)
        if "image" in need:
            t0 = time.perf_counter()
            paths = [catalogue.image_path(i) for i in range(len(catalogue))]
            workers = ic.num_workers if device == "cuda" else min(ic.num_workers, os.cpu_count() or 1)
            arr, ok = encode_images(net, preprocess, paths, ic.batch_size, workers, device)
            stats = {"images_unreadable": int((~ok).sum()), "images_total": len(paths),
                     "image_seconds": round(time.perf_counter() - t0, 2)}
            computed["image"] = (arr, "image", ident, stats)
        if "clip_category" in need:
            texts = [cfg.encoders.clip_prompt.format(c) for c in fs.categories]
            computed["clip_category"] = (encode_clip_text(net, tok, texts, device=device), "image", ident, {})
        del net
    if need & {"title", "attributes", "category", *RAGGED_PARTS}:
        model, ident = load_text_encoder(cfg.encoders.text.model, device)
        bs = cfg.encoders.text.batch_size
        if "title" in need:
            emb, idx = encode_unique(model, catalogue.titles, bs)
            computed["title"] = (emb[[idx[t] for t in catalogue.titles]], "text", ident, {})
        if need & {"attributes", *RAGGED_PARTS}:
            attrs = catalogue.attributes
            emb, idx = encode_unique(model, [a for aa in attrs for a in aa], bs)
            stats = {"attributes_unique_encoded": len(idx)}
            computed["attributes"] = (mean_attribute_embeddings(attrs, emb, idx), "text", ident, stats)
            rows, offsets = ragged_attributes(attrs, idx)
            computed.update(attribute_values=(emb, "text", ident, stats), attribute_index=(rows, "text", ident, {}),
                            attribute_offsets=(offsets, "text", ident, {}))
        if "category" in need:
            emb, idx = encode_unique(model, fs.categories, bs)
            computed["category"] = (emb[[idx[c] for c in fs.categories]], "text", ident, {})
    root.mkdir(parents=True, exist_ok=True)
    for part, npy, meta in todo:
        arr, role, ident, stats = computed[part]
        arr = np.ascontiguousarray(arr, dtype=np.float32 if arr.dtype.kind == "f" else arr.dtype)  # offsets stay ints
        digest = _save_npy(npy, arr)
        atomic_write_json(meta, {"part": part, "encoder_role": role, "identity": ident, "stats": stats,
                                 "shape": list(arr.shape), "dtype": str(arr.dtype), "sha256": digest,
                                 "catalogue": catalogue.fingerprint()})
        fs.arrays[part] = np.load(npy, mmap_mode="r")
        fs.identities[role] = ident
        fs.stats.update(stats)
    return fs


def _save_npy(path: Path, arr: np.ndarray) -> str:
    """Write ``arr`` as ``.npy`` atomically; returns the sha256 of the file's bytes."""
    import hashlib
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    atomic_write_bytes(path, buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def check_cache_part(
    npy: Path, meta: Path, rows: int | None, fingerprint: str,
) -> tuple[np.ndarray | None, dict[str, Any], str | None]:
    """Read one cache part and check it against its metadata before anything uses it.

    Checks: the metadata parses, the ``.npy`` file's sha256 equals the recorded one (a truncated,
    swapped or edited file fails here), it loads as an array of the recorded dtype (float32 for
    embeddings, integers for the ragged index parts) and shape with ``rows`` rows (None: any, for
    the ragged values and index), and it was computed for the catalogue ``fingerprint``.

    Returns:
        ``(array memory-mapped, metadata, None)``, or ``(None, metadata or {}, problem)`` where
        ``problem`` is one line naming the file.
    """
    from cti_repro.io_utils import sha256_file

    try:
        m = json.loads(meta.read_text(encoding="utf-8"))
        if not isinstance(m, dict) or not {"encoder_role", "identity", "shape"} <= set(m):
            raise ValueError("not a feature metadata object")
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, {}, f"{meta}: unreadable metadata ({type(exc).__name__}: {exc})"
    if m.get("catalogue") != fingerprint:
        return None, m, f"{meta}: computed for catalogue {m.get('catalogue')}, this one is {fingerprint}"
    if not m.get("sha256"):
        return None, m, f"{meta}: no checksum (written by an older version)"
    try:
        digest = sha256_file(npy)
    except OSError as exc:
        return None, m, f"{npy}: unreadable ({exc})"
    if digest != m["sha256"]:
        return None, m, f"{npy}: sha256 {digest[:12]}… differs from its metadata's {str(m['sha256'])[:12]}…"
    try:
        arr = np.load(npy, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:  # "mmap length is greater than file size" etc.
        return None, m, f"{npy}: not a readable .npy ({exc})"
    want = np.dtype(m.get("dtype", "float32"))
    if arr.dtype != want or list(arr.shape) != list(m["shape"]) or (rows is not None and arr.shape[0] != rows):
        return None, m, (f"{npy}: {arr.dtype} array of shape {list(arr.shape)}, expected {want} "
                         f"{m['shape']}" + (f" with {rows} rows" if rows is not None else ""))
    return arr, m, None
