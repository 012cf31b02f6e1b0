"""Time of each pipeline stage against catalogue size (1k to 400k products), and the figure.

At P products: N = P / 10 test candidates, Q = 1.41 N category queries (the paper's ratio),
0.8 P training pairs. Stages:

* measured at every size where it fits the time budget, then EXTRAPOLATED (dashed in the figure)
  from the largest measured size: evaluation (ours from embeddings; ranx fed from the score matrix;
  the per-query loop) and BM25 (ours; rank_bm25) grow with Q x N, i.e. with P^2;
* computed from measured rates (throughput x size, dotted): image / title features and training,
  which grow linearly with P (rates from ``features.json`` / ``train.json`` when they exist).

Writes ``results/scaling.json`` and ``results/scaling.png`` (``render.py`` copies the figure to
``book/figures/scaling.png``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import common as C

SIZES = [1_000, 3_000, 10_000, C.PAPER["products"], 100_000, 400_000]


def _eval_point(products: int, which: set[str], repeats: int) -> dict[str, float]:
    import bench_eval as E

    sz = C.scale_sizes(products)
    w = C.eval_workload(sz["queries"], sz["candidates"], seed=1)
    out: dict[str, float] = {}
    contenders = {}
    if "ours" in which:
        contenders["evaluation: ours (embeddings)"] = lambda: E.ours_embeddings(w)
    if which & {"ranx", "loop"}:
        s = E.exact_scores(w)
        if "ranx" in which:
            contenders["evaluation: ranx (from S)"] = E.Ranx(w, s)
        if "loop" in which:
            contenders["evaluation: per-query loop"] = lambda: E.loop_eval(w, s, np.arange(len(s)))
    for name, t in C.interleaved(contenders, repeats).items():
        out[name] = t["median_s"]
    return out


def _bm25_point(products: int, which: set[str], ref_queries: int) -> dict[str, float]:
    from rank_bm25 import BM25Okapi

    from cti_repro.models.baselines import SparseBM25, tokenize

    sz = C.scale_sizes(products)
    titles, qtexts = C.titles_and_queries(sz["candidates"], sz["queries"], seed=1)
    corpus, queries = [tokenize(t) for t in titles], [tokenize(q) for q in qtexts]
    out = {}
    if "ours" in which:
        out["BM25: ours (sparse)"] = C.interleaved({"x": lambda: SparseBM25(corpus).score_sparse(queries)}, 2)["x"]["median_s"]
    if "rank_bm25" in which:
        sub = queries[:ref_queries]
        t_build = C.timed(lambda: BM25Okapi(corpus))[0]
        ref = BM25Okapi(corpus)
        t_sub = C.timed(lambda: [ref.get_scores(q) for q in sub])[0]
        out["BM25: rank_bm25"] = t_build + t_sub * len(queries) / len(sub)  # queries scaled linearly
    return out


def _rates() -> dict[str, float]:
    """Per-product seconds of the linear stages, from the feature / training results."""
    rates = {}
    f = C.RESULTS / "features.json"
    if f.is_file():
        feats = json.loads(f.read_text())
        best: dict[str, float] = {}
        for r in feats["images"]:
            if r["kind"] == "jpeg500" and not r["amp"]:
                best[r["model"]] = max(best.get(r["model"], 0.0), r["images_per_s"]["end to end"])
        for m, v in best.items():
            rates[f"image features: {m} (jpeg 500 px)"] = 1.0 / v
        for r in feats["text"]:
            key = f"title features: {r['model'].split('/')[-1]}"
            rates[key] = min(rates.get(key, np.inf), 1.0 / r["sentences_per_s"])
    t = C.RESULTS / "train.json"
    if t.is_file():
        tr = json.loads(t.read_text())
        for r in tr["runs"]:
            if r["model"] == "CLIP-ITA":
                # 30 epochs over 0.8 P pairs plus validation over 0.1 P pairs, per product
                per_pair = r["epoch_estimate_s"] / (tr["train_pairs"] + 1e-9)
                rates[f"training: CLIP-ITA, batch {r['batch']}, 30 epochs"] = 30 * per_pair * 0.8
    return rates


def run(quick: bool = True, rates: dict[str, float] | None = None) -> dict:
    limits = {  # largest size each stage is measured at; beyond it: extrapolated
        "ours": 100_000 if quick else 400_000, "ranx": 38_921 if quick else 100_000,
        "loop": 10_000 if quick else 38_921, "bm25_ours": 100_000 if quick else 400_000,
        "rank_bm25": 10_000 if quick else 38_921,
    }
    measured: dict[str, dict[int, float]] = {}
    for p in SIZES:
        which = {k for k in ("ours", "ranx", "loop") if p <= limits[k]}
        pts = _eval_point(p, which, 2 if p < 100_000 else 1) if which else {}
        bm = {k for k, lim in (("ours", limits["bm25_ours"]), ("rank_bm25", limits["rank_bm25"])) if p <= lim}
        pts.update(_bm25_point(p, bm, 200) if bm else {})
        for name, t in pts.items():
            measured.setdefault(name, {})[p] = t
        print(f"   scaling: {p:>7} products measured: " + ", ".join(f"{k.split(': ', 1)[1]} {C.fmt_s(v)}" for k, v in pts.items()))
    series = {}
    for name, pts in measured.items():
        xs = sorted(pts)
        top = xs[-1]
        est = {p: pts[top] * (p / top) ** 2 for p in SIZES if p > top}  # Q x N grows as P^2
        series[name] = {"measured": {str(p): pts[p] for p in xs}, "extrapolated": {str(p): v for p, v in est.items()},
                        "model": "P^2 (queries x candidates) from the largest measured size"}
    for name, per_product in (rates if rates is not None else _rates()).items():
        series[name] = {"computed": {str(p): per_product * p for p in SIZES},
                        "model": "linear in P, from the measured rate"}
    out = {"machine": C.machine(), "mode": "quick" if quick else "full", "sizes": SIZES,
           "derived": {str(p): C.scale_sizes(p) for p in SIZES}, "series": series}
    C.write_json("scaling", out)
    ray = C.RESULTS / "ray.json"  # from bench_ray.py (runs after this one in make bench)
    plot(out, C.RESULTS / "scaling.png", json.loads(ray.read_text()) if ray.is_file() else None)
    return out


def plot_ray(ax, ray: dict) -> None:
    """Wall time of the study's rows on Ray vs worker processes, and of the image features vs
    shards (Ray tasks), each with its ideal (1/W from one worker) and the machine's core count."""
    okabe = ["#0072B2", "#D55E00"]
    cores = (ray.get("machine") or {}).get("cores")
    for (key, xkey, label), c, mk in zip(
            (("rows", "workers", "rows of Table 1 (run_row), W Ray workers"),
             ("shards", "shards", "ViT-B-32 image features, S shards (Ray tasks)")), okabe, ("o", "s")):
        pts = [r for r in ray.get(key, []) if isinstance(r.get(xkey), int)]
        if not pts:
            continue
        xs, ys = [r[xkey] for r in pts], [r["wall_s"] for r in pts]
        n = pts[0].get("rows") or pts[0].get("images")
        ax.plot(xs, ys, "-", marker=mk, color=c, lw=2, ms=6, label=f"{label}: {n} {'rows' if key == 'rows' else 'images'}")
        ax.plot(xs, [ys[0] / x for x in xs], ":", color=c, lw=1.2)
        for x, y, r in zip(xs, ys, pts):
            ax.annotate(f"{r['speedup']:.2f}x", (x, y), xytext=(5, 4), textcoords="offset points", fontsize=8, color=c)
    if cores:
        ax.axvline(cores, color="grey", lw=0.8, ls="-.")
        ax.text(cores * 1.04, 0.97, f"{cores} cores", transform=ax.get_xaxis_transform(), fontsize=8, color="grey",
                va="top")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log", base=2)
    xs_all = sorted({r["workers"] for r in ray.get("rows", [])}
                    | {r["shards"] for r in ray.get("shards", []) if isinstance(r["shards"], int)})
    ax.xaxis.set_major_locator(FixedLocator(xs_all))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Ray workers W / shards S", fontsize=10)
    ax.set_ylabel("seconds (wall)", fontsize=10)
    ax.set_title("On Ray (local cluster): solid measured, dotted ideal 1/W;\nlabels: speed-up over W = 1 / S = 1",
                 fontsize=9, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", frameon=True, framealpha=0.9)
    ax.set_ylim(0, max(max(r["wall_s"] for r in ray.get(k, [])) for k in ("rows", "shards") if ray.get(k)) * 1.25)


def plot(data: dict, path, ray: dict | None = None) -> None:
    """The scaling figure: stage time vs catalogue size; with ``ray`` (``results/ray.json``) a
    second panel, time vs Ray workers and feature shards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # legible at the page's ~770 px: 7.5 in at 100 dpi, fonts >= 10 pt. Measured stages get an
    # Okabe-Ito colour and a marker each (the legend); the "rate x size" estimates are thin grey
    # lines labelled at their right end instead of a dozen look-alike legend entries.
    if ray and (ray.get("rows") or ray.get("shards")):
        fig, (ax, ax_ray) = plt.subplots(2, 1, figsize=(7.5, 10.2), dpi=100, height_ratios=(5.6, 4.2))
        plot_ray(ax_ray, ray)
    else:
        fig, ax = plt.subplots(figsize=(7.5, 5.6), dpi=100)
    okabe = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
    marks = ["o", "s", "D", "^", "v", "P", "X", "*"]
    measured = [(n, s) for n, s in sorted(data["series"].items()) if "computed" not in s]
    for i, (name, s) in enumerate(measured):
        c, mk = okabe[i % len(okabe)], marks[i % len(marks)]
        xm = sorted(int(p) for p in s["measured"])
        ax.plot(xm, [s["measured"][str(p)] for p in xm], "-", marker=mk, color=c, ms=6, lw=2, label=name)
        if s["extrapolated"]:
            xe = [xm[-1]] + sorted(int(p) for p in s["extrapolated"])
            ye = [s["measured"][str(xm[-1])]] + [s["extrapolated"][str(p)] for p in xe[1:]]
            ax.plot(xe, ye, "--", color=c, lw=1.5)
            ax.plot(xe[1:], ye[1:], marker=mk, ls="", mfc="white", color=c, ms=6)
    for name, s in sorted(data["series"].items()):
        if "computed" in s:
            xs = sorted(int(p) for p in s["computed"])
            ys = [s["computed"][str(p)] for p in xs]
            ax.plot(xs, ys, "-", color="0.6", lw=1)
            ax.annotate(name, (xs[-1], ys[-1]), xytext=(4, 0), textcoords="offset points", fontsize=8,
                        color="0.35", va="center")
    for x, lab in ((C.PAPER["products"], "paper scale"), (10 * C.PAPER["products"], "10x")):
        ax.axvline(x, color="grey", lw=0.8, ls="-.")
        ax.text(x * 1.05, 0.02, lab, transform=ax.get_xaxis_transform(), fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("products in the catalogue (test split 10 %, queries = 1.41 x candidates)", fontsize=10)
    ax.set_ylabel("seconds", fontsize=10)
    m = data["machine"]
    ax.set_title(f"Stage time vs catalogue size ({m['cpu']}, {m['torch_threads']} thread(s), no GPU)\n"
                 "solid: measured; dashed, hollow: extrapolated (x P^2); grey: measured rate x size",
                 fontsize=9, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=10, loc="upper left", frameon=True, framealpha=0.9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="measure up to 400k products where feasible")
    ap.add_argument("--threads", type=int, default=None, help="torch/numba threads (default: all cores)")
    args = ap.parse_args()
    C.set_threads(args.threads)
    run(quick=not args.full)
