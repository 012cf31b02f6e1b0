"""Image features in shards: ``cti-repro features --profile P --shards N [--executor ray]``.

The image part (the expensive one: one forward pass per product image) is split into ``N``
contiguous row ranges; each is a task (locally in turn, or a Ray task with one GPU on a GPU
cluster) that writes its own shard ``image-<key>.shard<i>of<N>.npy`` and a JSON sidecar (row
range, shape, sha256) atomically next to the regular cache. When every shard is valid they are
copied, memory-map to memory-map, into the regular ``image-<key>.npy`` (the file
:func:`cti_repro.features.load_features` reads; the unsharded path is unchanged) and removed. A
missing or corrupt shard (no sidecar, wrong range or shape, checksum mismatch) is recomputed
alone; the valid ones are kept. Two ``features --shards`` on one cache take turns
(:func:`~cti_repro.io_utils.folder_lock` on the cache folder): the second finds the part
assembled; the assembly's temporary name is unique and removed on failure.

Shard boundaries fall on multiples of ``encoders.image.batch_size``, so every batch a shard
encodes is one the unsharded run encodes too, and the assembled array is the unsharded one, to
the bit. The text parts (encoded once per *unique* string, cheap) and the category parts are
then computed by :func:`load_features` as before.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from cti_repro.config import StudyConfig
from cti_repro.data.catalogue import Catalogue
from cti_repro.device import pick_device
from cti_repro.features import (
    FeatureSet, _part_key, check_cache_part, encode_images, feature_cache_dir, load_clip, load_features,
    refused_image_count,
)
from cti_repro.io_utils import atomic_write_json, folder_lock, naming_path, new_file_mode, sha256_file


def shard_bounds(rows: int, shards: int, batch_size: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ``[start, stop)`` ranges covering ``rows``, cut at multiples of
    ``batch_size`` (fewer ranges when there are fewer batches than shards)."""
    if shards < 1:
        raise ValueError(f"--shards must be at least 1, got {shards}")
    batches = -(-rows // batch_size)
    per = -(-batches // shards) if batches else 0
    cuts = sorted({min(rows, i * per * batch_size) for i in range(shards + 1)})
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False)] or [(0, 0)]


def shard_files(root: Path, key: str, i: int, n: int) -> tuple[Path, Path]:
    """(the .npy, its JSON sidecar) of shard ``i`` of ``n``."""
    stem = f"image-{key}.shard{i:03d}of{n:03d}"
    return root / f"{stem}.npy", root / f"{stem}.json"


def shard_is_valid(npy: Path, meta: Path, start: int, stop: int) -> bool:
    """True if the shard's sidecar names this row range and its array loads with that many rows
    and the recorded sha256 (a truncated or altered file is not valid)."""
    try:
        m = json.loads(meta.read_text())
        arr = np.load(npy, mmap_mode="r")
        ok = (m["start"], m["stop"]) == (start, stop) and arr.shape == tuple(m["shape"]) and len(arr) == stop - start
        return bool(ok and arr.dtype == np.float32 and sha256_file(npy) == m["sha256"])
    except (OSError, ValueError, KeyError, TypeError):  # missing, unparsable, truncated
        return False


@functools.lru_cache(maxsize=1)
def _encoder(model: str, pretrained: str, allow_random: bool, device: str, quick_gelu: bool | None = None):
    """The image encoder, built once per process (a Ray worker keeps it for its next shard)."""
    return load_clip(model, pretrained, allow_random, device, quick_gelu=quick_gelu)


def compute_shard(cfg: StudyConfig, paths: list[Path | None], npy: Path, meta: Path, start: int, stop: int,
                  device: str | None = None) -> dict:
    """Encode the images ``paths`` (rows ``start:stop``) and write shard ``npy`` + ``meta`` atomically.

    Runs in a Ray worker too; the encoder is built as :func:`load_features` builds it (same seed,
    same batch size, same DataLoader workers), so the rows are the unsharded ones.

    Returns:
        The sidecar dict (row range, shape, sha256, encoder identity, stats).
    """
    from cti_repro.features import _save_npy

    ic = cfg.encoders.image
    device = device or pick_device(cfg.train.device)
    t0 = time.perf_counter()
    net, preprocess, _, ident = _encoder(ic.model, ic.pretrained, ic.allow_random, device, ic.quick_gelu)
    workers = ic.num_workers if device == "cuda" else min(ic.num_workers, os.cpu_count() or 1)
    arr, ok = encode_images(net, preprocess, paths, ic.batch_size, workers, device, progress=False)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    _save_npy(npy, arr)
    info = {"start": start, "stop": stop, "shape": list(arr.shape), "sha256": sha256_file(npy), "identity": ident,
            "stats": {"images_unreadable": int((~ok).sum()), "image_seconds": round(time.perf_counter() - t0, 2)}}
    atomic_write_json(meta, info)  # written last: a shard without its sidecar is recomputed
    return info


def image_shards(
    cfg: StudyConfig, catalogue: Catalogue, shards: int, executor: str = "local", address: str | None = None,
    retries: int | None = None, device: str | None = None,
) -> list[int]:
    """Compute the image shards that are missing or not valid; return their indices.

    Args:
        cfg: the study config (encoder, batch size, cache folder).
        catalogue: the catalogue (its fingerprint is in the cache key).
        shards: number of shards.
        executor: ``local`` (one after another, here) or ``ray`` (one Ray task per shard).
        address: Ray cluster to join; none starts a local one.
        retries: Ray attempts after a failure (default 2).
        device: encoding device in local runs (default: ``train.device``).

    Raises:
        RuntimeError: a shard still failed after its retries (the others are kept on disk).
    """
    root = feature_cache_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    key, n = _part_key(cfg, catalogue, "image"), len(catalogue)
    bounds = shard_bounds(n, shards, cfg.encoders.image.batch_size)
    todo = [i for i, (a, b) in enumerate(bounds) if not shard_is_valid(*shard_files(root, key, i, len(bounds)), a, b)]
    jobs = []
    for i in todo:
        a, b = bounds[i]
        paths = [catalogue.image_path(j) for j in range(a, b)]
        jobs.append((i, compute_shard, (cfg, paths, *shard_files(root, key, i, len(bounds)), a, b), {}))
    if executor == "local":
        for _, fn, args, _ in jobs:
            fn(*args, device=device)
        return todo
    from cti_repro.run import ray_executor

    if executor != "ray":
        raise ValueError(f"unknown executor {executor!r}; expected one of {ray_executor.EXECUTORS}")
    errors: dict[int, str] = {}

    def finished(i: int, error: str | None, seconds: float) -> None:
        print(f"image shard {i + 1}/{len(bounds)}: {'ok' if error is None else 'FAILED: ' + error} "
              f"in {seconds:.1f} s", flush=True)
        if error is not None:
            errors[i] = error

    with ray_executor.ray_session(address, None) as ray:
        ray_executor.run_tasks(jobs, finished, ray_executor.task_resources(cfg, ray),
                               ray_executor.DEFAULT_RETRIES if retries is None else retries)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(bounds)} image shards failed: "
                           + "; ".join(f"shard {i}: {e}" for i, e in sorted(errors.items())))
    return todo


def assemble_image(cfg: StudyConfig, catalogue: Catalogue, shards: int) -> Path:
    """Copy the (valid) shards into the regular image cache file + sidecar, then remove them.

    The ``.npy`` is written through a memory map under a temporary name and renamed, so the whole
    array never sits in memory and a reader never sees half of it.
    """
    root, key = feature_cache_dir(cfg), _part_key(cfg, catalogue, "image")
    bounds = shard_bounds(len(catalogue), shards, cfg.encoders.image.batch_size)
    files = [shard_files(root, key, i, len(bounds)) for i in range(len(bounds))]
    for (a, b), (npy, meta) in zip(bounds, files, strict=True):
        if not shard_is_valid(npy, meta, a, b):
            raise RuntimeError(f"{npy}: image shard missing or corrupt; run `cti-repro features` again")
    metas = [json.loads(m.read_text()) for _, m in files]
    parts = [np.load(npy, mmap_mode="r") for npy, _ in files]
    dim = max((p.shape[1] for p in parts if p.ndim == 2 and p.shape[0]), default=0)
    final = root / f"image-{key}.npy"
    fd, name = tempfile.mkstemp(dir=root, prefix=f".image-{key}.npy.", suffix=".assembling")  # unique per writer
    os.close(fd)
    tmp = Path(name)
    try:
        with naming_path(final):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(catalogue), dim))
            _reserve(tmp)
            for (a, b), part in zip(bounds, parts, strict=True):
                if b > a:
                    out[a:b] = part
            out.flush()
            del out, parts
            os.chmod(tmp, new_file_mode())  # mkstemp makes 0600 files
            os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stats = {"images_unreadable": sum(m["stats"]["images_unreadable"] for m in metas),
             "image_seconds": round(sum(m["stats"]["image_seconds"] for m in metas), 2), "image_shards": len(bounds),
             "images_refused": refused_image_count(catalogue)}
    atomic_write_json(root / f"image-{key}.json", {
        "part": "image", "encoder_role": "image", "identity": metas[0]["identity"], "stats": stats,
        "shape": [len(catalogue), dim], "dtype": "float32", "sha256": sha256_file(final),
        "catalogue": catalogue.fingerprint()})  # the metadata load_features checks (features.check_cache_part)
    for npy, meta in files:
        meta.unlink(missing_ok=True)
        npy.unlink(missing_ok=True)
    return final


def _reserve(path: Path) -> None:
    """Allocate the blocks of ``path`` (a sparse memory-mapped file) now: on a full disk the
    copy through the memory map would die of SIGBUS; here it is an ``OSError`` (ENOSPC)."""
    import errno

    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, os.path.getsize(path))
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):  # a file system without it: go on
                raise


def extract_features(
    cfg: StudyConfig, catalogue: Catalogue, shards: int = 1, executor: str = "local", address: str | None = None,
    retries: int | None = None, device: str | None = None,
) -> FeatureSet:
    """Every feature part of ``catalogue``: the image part in ``shards`` shards (unless it is cached
    already), the rest through :func:`load_features`; ``shards=1`` is exactly :func:`load_features`."""
    if shards <= 1:
        return load_features(cfg, catalogue, device=device)
    key = _part_key(cfg, catalogue, "image")
    root = feature_cache_dir(cfg)
    npy, meta = root / f"image-{key}.npy", root / f"image-{key}.json"
    computed: list[int] = []
    # One writer at a time per cache: another `features --shards` waits here, then finds the part
    # assembled (a second assembly would delete the shards under the first one's feet).
    with folder_lock(root, waiting=f"{root}: another process is computing image features here; waiting for it"):
        cached = npy.is_file() and meta.is_file() and check_cache_part(
            npy, meta, len(catalogue), catalogue.fingerprint())[2] is None
        if not cached:
            computed = image_shards(cfg, catalogue, shards, executor, address, retries, device)
            assemble_image(cfg, catalogue, shards)
    fs = load_features(cfg, catalogue, device=device)
    if not cached:  # assembled in this call: not a cache hit, whatever load_features saw
        n = len(shard_bounds(len(catalogue), shards, cfg.encoders.image.batch_size))
        fs.cache_hits = [p for p in fs.cache_hits if p != "image"]
        fs.stats.update(image_shards_computed=len(computed), image_shards_reused=n - len(computed))
    return fs


__all__ = ["shard_bounds", "shard_files", "shard_is_valid", "compute_shard", "image_shards", "assemble_image",
           "extract_features"]
