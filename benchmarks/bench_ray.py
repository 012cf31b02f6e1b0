"""The study on Ray: rows with 1, 2, 4, 8 worker processes, image features in 1, 2, 4 shards.

* rows: every row of Table 1 (one seed: 18 rows, smoke profile with 10 epochs) of a synthetic catalogue, each a Ray task running
  :func:`cti_repro.run.row.run_row` (what the row notebook calls; the notebook's kernel start-up
  is left out so the curve shows the work), on a fresh local Ray cluster with ``num_cpus = W``.
  The features are cached first (the batch computes them once before the rows too). Wall time of
  the whole batch, Ray start-up included, and the speed-up over ``W = 1``.
* shards: the image part (ViT-B-32, random weights) of a synthetic catalogue in ``S`` shards,
  each a Ray task on a local cluster with ``S`` CPUs, speed-up over ``S = 1`` on Ray; also the
  unsharded path (:func:`load_features` in this process, torch's default threads) for reference.
  Each shard loads its own encoder, which is the fixed cost a shard adds. The assembled array is checked equal to the unsharded one, to the bit.

Quick: 2,000 products, W in 1, 2, 4 and S in 1, 2, 4 on 400 products. Full: 8,000 products, W up
to 8, 2,000 products for the shards. On a machine with fewer cores than W the extra workers only
share the cores: the speed-up levels off at the core count (the JSON records it and the load).

Writes ``results/ray.json``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

import common as C


def _config(base: Path, products: int, batch_size: int = 64, image_model: str | None = None,
            epochs: int | None = None) -> Path:
    raw = yaml.safe_load((C.ROOT / "_config.yml").read_text())
    prof = raw["profiles"]["smoke"]
    prof.update(results_dir=str(base / "runs"), cache_dir=str(base / "cache"), book_dir=str(base / "book"))
    prof["data"] = {**prof.get("data", {}), "dir": str(base / "data"), "synthetic": {"products": products, "seed": 0}}
    prof["encoders"]["image"]["batch_size"] = batch_size
    if image_model:
        prof["encoders"]["image"]["model"] = image_model
    if epochs:
        prof["train"]["epochs"] = epochs
    path = base / "_config.yml"
    base.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _row(cfg, folder: str, task) -> str:
    import torch

    from cti_repro.run.row import run_row

    torch.set_num_threads(1)  # one core per row, as the batch's kernels
    return str(run_row(task.setting, task.model, seed=task.seed, cfg=cfg, out_dir=Path(folder), force=True,
                       progress=False))


def bench_rows(base: Path, products: int, workers: list[int]) -> list[dict]:
    import ray

    from cti_repro.config import load_config
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.features import load_features
    from cti_repro.run import batch
    from cti_repro.run.book import book_layout
    from cti_repro.run.ray_executor import run_tasks

    # 10 epochs (smoke: 3), so that a row's training, not Ray's and the workers' start-up, is timed
    cfg = load_config("smoke", _config(base, products, epochs=10))
    catalogue = prepare_catalogue(cfg)
    load_features(cfg, catalogue)
    tasks = batch.plan_rows(cfg, catalogue.fingerprint(), book_layout(cfg), seeds=[0], force=True)
    out = []
    for w in workers:
        folder = base / f"rows_w{w}"
        errors: dict = {}
        t0 = time.perf_counter()
        ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False)
        t_up = time.perf_counter() - t0
        try:
            run_tasks([(t, _row, (cfg, str(folder), t), {}) for t in tasks],
                      lambda k, e, s: errors.__setitem__(k, e), {"num_cpus": 1}, retries=0)
        finally:
            ray.shutdown()
        wall = time.perf_counter() - t0
        bad = [k.label for k, e in errors.items() if e]
        if bad:
            raise RuntimeError(f"rows failed on Ray: {bad[:3]}: {errors[next(iter(errors))]}")
        out.append({"workers": w, "rows": len(tasks), "wall_s": round(wall, 2), "ray_start_s": round(t_up, 2),
                    "load_avg": [round(x, 2) for x in os.getloadavg()]})
        print(f"   rows on Ray, {w} workers: {len(tasks)} rows in {wall:.1f} s (Ray start {t_up:.1f} s)", flush=True)
    for r in out:
        r["speedup"] = round(out[0]["wall_s"] / r["wall_s"], 2)
    return out


def bench_shards(base: Path, products: int, shard_counts: list[int]) -> list[dict]:
    import ray

    from cti_repro.config import load_config
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.features import load_features
    from cti_repro.run import shards as sh

    # ViT-B-32 (random weights), the study's tower: its forward pass, not the per-shard start-up
    # (Ray worker, encoder build), is then what the shards share out
    cfg = load_config("smoke", _config(base, products, batch_size=32, image_model="ViT-B-32"))
    catalogue = prepare_catalogue(cfg)
    out, reference = [], None
    # 0 = unsharded, in this process (torch's default threads); then S shards as Ray tasks (one
    # CPU, one thread each), S = 1 included, so the shard curve does not mix in the threading
    for s in [0, *shard_counts]:
        c = dataclasses.replace(cfg, cache_dir=str(base / f"cache_s{s}"))
        t0 = time.perf_counter()
        if s == 0:
            arr = np.asarray(load_features(c, catalogue, parts=("image",), device="cpu")["image"])
        else:
            ray.init(num_cpus=s, include_dashboard=False, log_to_driver=False)
            try:
                sh.image_shards(c, catalogue, s, executor="ray", retries=0)
            finally:
                ray.shutdown()
            sh.assemble_image(c, catalogue, s)
            arr = np.asarray(load_features(c, catalogue, parts=("image",), device="cpu")["image"])
        wall = time.perf_counter() - t0
        reference = arr if reference is None else reference
        same = bool(np.array_equal(arr, reference))
        out.append({"shards": s or "unsharded", "ray": bool(s), "images": len(catalogue), "wall_s": round(wall, 2),
                    "images_per_s": round(len(catalogue) / wall, 1), "equal_to_unsharded": same,
                    "load_avg": [round(x, 2) for x in os.getloadavg()]})
        print(f"   image features, {f'{s} shard(s) on Ray' if s else 'unsharded, in process'}: {len(catalogue)} images in {wall:.1f} s; equal: {same}", flush=True)
    for r in out:  # over one shard on Ray
        r["speedup"] = round(out[1]["wall_s"] / r["wall_s"], 2) if len(out) > 1 else 1.0
    return out


def run(quick: bool = True) -> dict:
    try:
        import ray  # noqa: F401
    except ImportError:
        print("   ray is not installed (pip install -e '.[ray]'): skipped")
        return {}
    # the Ray workers import this checkout and this module (by name, as cloudpickle sends functions)
    paths = [str(C.ROOT), str(C.ROOT / "benchmarks"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    workers, row_products = ([1, 2, 4], 2_000) if quick else ([1, 2, 4, 8], 8_000)
    shard_counts, img_products = [1, 2, 4], (400 if quick else 2_000)
    out = {"machine": C.machine(), "mode": "quick" if quick else "full"}
    base = Path(tempfile.mkdtemp(prefix="cti_bench_ray_"))
    try:
        print(f"\n== the study's rows on Ray: synthetic catalogue of {row_products} products ==")
        out["rows"] = bench_rows(base / "rows", row_products, workers)
        print(f"\n== image features in shards (Ray tasks): {img_products} products ==")
        out["shards"] = bench_shards(base / "shards", img_products, shard_counts)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    C.print_table([[r["workers"], r["rows"], C.fmt_s(r["wall_s"]), f"{r['speedup']:.2f}x"] for r in out["rows"]],
                  ["Ray workers", "rows", "wall", "speed-up"])
    C.print_table([[r["shards"], r["images"], C.fmt_s(r["wall_s"]), f"{r['images_per_s']:.0f}",
                    f"{r['speedup']:.2f}x", r["equal_to_unsharded"]] for r in out["shards"]],
                  ["shards", "images", "wall", "img/s", "speed-up", "== unsharded"])
    out["machine_end"] = C.machine()
    C.write_json("ray", out)
    return out


if __name__ == "__main__":
    C.cli_main(run, __doc__)
