"""The on-disk feature cache of the frozen encoders (:mod:`cti_repro.encoders`).

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
``clip_title``            (on request) CLIP text-tower embedding of each title [N, d_i] (text-image study)
``alexnet_fc7``           (on request) AlexNet fc7 activations of each image [N, 4096] (text-image study,
                          :mod:`cti_repro.models.xmodal.alexnet`; keyed by its weights and ``xmodal.image_size``)
``attribute_values``      (ragged, on request) embedding of each *unique* attribute string [U, d_t]
``attribute_index``       (ragged) row in ``attribute_values`` of each attribute, catalogue order [M]
``attribute_offsets``     (ragged) product i's attributes are ``index[offsets[i]:offsets[i+1]]`` [N+1]
========================  ===================================================================

The ragged parts feed ``model.attribute_pool: attention`` (an extension); they are not in the
default :data:`PARTS`, but they are cached whenever the attribute strings are encoded (they cost
nothing more then), so an attention row after the features stage finds them. Unique strings + index, not one row per attribute: at the paper's scale
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
from cti_repro.clip_weights import image_weights_key
from cti_repro.device import pick_device
from cti_repro.encoders import (  # noqa: F401  (re-exported: the encoders' historical home)
    WeightsUnavailableError, _ImageDataset, encode_clip_text, encode_images, encode_unique, load_clip,
    load_text_encoder, mean_attribute_embeddings, padded_rows, ragged_attributes,
)
from cti_repro.io_utils import atomic_write_bytes, atomic_write_json, stable_hash

PARTS = ("image", "title", "attributes", "category", "clip_category")
RAGGED_PARTS = ("attribute_values", "attribute_index", "attribute_offsets")
XMODAL_PARTS = ("clip_title", "alexnet_fc7")  # the text-image study's CLIP rows; Rubio's rows' image branch
CLIP_PARTS = ("image", "clip_category", "clip_title")  # parts of the open_clip model (one cache key spec)
CACHE_VERSION = 1



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
    if part == "alexnet_fc7":
        from cti_repro.models.xmodal.alexnet import alexnet_weights_key

        a = cfg.xmodal.alexnet
        spec = {"model": "alexnet", "weights": a.weights, "allow_random": a.allow_random,
                "file": alexnet_weights_key(a.weights), "size": cfg.xmodal.image_size, "layer": "fc7"}
    elif part in CLIP_PARTS:
        spec = {"model": enc.image.model, "pretrained": enc.image.pretrained, "allow_random": enc.image.allow_random,
                **image_weights_key(enc.image.model, enc.image.pretrained, enc.image.quick_gelu),
                "precision": "bf16" if amp_enabled(device, None) else "fp32"}  # encode_images' autocast
        if part == "clip_category":
            spec["prompt"] = enc.clip_prompt
        if part != "image":
            spec["text_forward"] = "trimmed"  # encode_clip_text(trim=True): up to each batch's last EOT
    else:
        spec = {"model": enc.text.model}
    return stable_hash({"v": CACHE_VERSION, "part": part, "enc": spec, "data": catalogue.fingerprint()})


def xmodal_parts(cfg: StudyConfig) -> tuple[str, ...]:
    """The parts the text-image rows of ``cfg`` read (computed once before them): ``clip_title``, and
    ``alexnet_fc7`` when Rubio's rows use the frozen AlexNet (``xmodal.image_branch: alexnet_fc7``)."""
    return XMODAL_PARTS if cfg.xmodal.image_branch == "alexnet_fc7" else ("clip_title",)


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
    unknown = set(parts) - set(PARTS) - set(RAGGED_PARTS) - set(XMODAL_PARTS)
    if unknown:
        raise ValueError(f"unknown feature part(s) {sorted(unknown)}; expected some of "
                         f"{PARTS + RAGGED_PARTS + XMODAL_PARTS}")
    device = device or pick_device(cfg.train.device)
    root = feature_cache_dir(cfg)
    fs = FeatureSet(categories=sorted({c for p in catalogue.paths for c in p}))
    todo = []
    for part in dict.fromkeys(parts):
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
    if need & set(CLIP_PARTS):
        ic = cfg.encoders.image
        net, preprocess, tok, ident = load_clip(ic.model, ic.pretrained, ic.allow_random, device, quick_gelu=ic.quick_gelu)
        if "image" in need:
            t0 = time.perf_counter()
            paths = [catalogue.image_path(i) for i in range(len(catalogue))]
            workers = ic.num_workers if device == "cuda" else min(ic.num_workers, os.cpu_count() or 1)
            arr, ok = encode_images(net, preprocess, paths, ic.batch_size, workers, device)
            stats = {"images_unreadable": int((~ok).sum()), "images_total": len(paths),
                     "images_refused": refused_image_count(catalogue),  # part of images_unreadable
                     "image_seconds": round(time.perf_counter() - t0, 2)}
            computed["image"] = (arr, "image", ident, stats)
        if "clip_category" in need:
            texts = [cfg.encoders.clip_prompt.format(c) for c in fs.categories]
            computed["clip_category"] = (encode_clip_text(net, tok, texts, device=device), "image", ident, {})
        if "clip_title" in need:
            computed["clip_title"] = (encode_clip_text(net, tok, catalogue.titles, device=device), "image", ident, {})
        del net
    if "alexnet_fc7" in need:
        from cti_repro.models.xmodal.alexnet import encode_fc7, load_alexnet

        net, ident = load_alexnet(cfg.xmodal.alexnet.weights, cfg.xmodal.alexnet.allow_random)
        arr, ok, secs = encode_fc7(net, [catalogue.image_path(i) for i in range(len(catalogue))], cfg.xmodal.image_size,
                                   cfg.encoders.image.batch_size, device)
        ident = {**ident, "input_px": cfg.xmodal.image_size, "layer": "fc7"}
        computed["alexnet_fc7"] = (arr, "alexnet", ident, {"alexnet_images_unreadable": int((~ok).sum()),
                                                           "alexnet_seconds": secs})
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
            stats = {"attributes_unique_encoded": len(idx),  # a product without any gets the zero vector (eq. 5)
                     "products_without_attributes": sum(not aa for aa in attrs)}
            computed["attributes"] = (mean_attribute_embeddings(attrs, emb, idx), "text", ident, stats)
            rows, offsets = ragged_attributes(attrs, idx)
            computed.update(attribute_values=(emb, "text", ident, stats), attribute_index=(rows, "text", ident, {}),
                            attribute_offsets=(offsets, "text", ident, {}))
        if "category" in need:
            emb, idx = encode_unique(model, fs.categories, bs)
            computed["category"] = (emb[[idx[c] for c in fs.categories]], "text", ident, {})
    root.mkdir(parents=True, exist_ok=True)
    for part in list(computed):  # the ragged parts come with the attributes: cache them too
        if part not in need:
            key = _part_key(cfg, catalogue, part, device)
            todo.append((part, root / f"{part}-{key}.npy", root / f"{part}-{key}.json"))
    for part, npy, meta in todo:
        arr, role, ident, stats = computed[part]
        arr = np.ascontiguousarray(arr, dtype=np.float32 if arr.dtype.kind == "f" else arr.dtype)  # offsets stay ints
        digest = _save_npy(npy, arr)
        atomic_write_json(meta, {"part": part, "encoder_role": role, "identity": ident, "stats": stats,
                                 "shape": list(arr.shape), "dtype": str(arr.dtype), "sha256": digest,
                                 "catalogue": catalogue.fingerprint()})
        if part in need:
            fs.arrays[part] = np.load(npy, mmap_mode="r")
            fs.identities[role] = ident
            fs.stats.update(stats)
    return fs


def refused_image_count(catalogue: Catalogue) -> int:
    """How many ``image`` values :meth:`Catalogue.refused_images` refuses, with one warning line
    naming the catalogue and the first of them (they are encoded as missing: zero vectors)."""
    rows = catalogue.refused_images()
    if rows:
        rel = catalogue.frame["image"].iat[rows[0]]
        print(f"warning: {catalogue.root}: {len(rows)} image path(s) are not regular files inside "
              f"{catalogue.root}/images (first: row {rows[0]}, {rel!r}); counted as missing", file=sys.stderr)
    return len(rows)


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
