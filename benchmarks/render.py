"""Regenerate the performance table of ``book/performance.md`` (and its figure) from ``benchmarks/results``.

    python benchmarks/render.py            # rewrite the table between the page's markers, copy the figure
    python benchmarks/render.py --print    # only print the table (markdown)

The table is the block between ``<!-- perf-table:start -->`` and ``<!-- perf-table:end -->``, the
anchors (faiss-cpu, bm25s; ``bench_anchors.py``) the block between ``<!-- anchors-table:start -->``
and ``<!-- anchors-table:end -->``; the rest of the page is left as it is. A block whose benchmarks
left no JSON is kept as it is (a partial run does not erase measured numbers). Entries marked *
are extrapolated (see each benchmark).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as C  # noqa: E402

PAGE = C.ROOT / "book" / "performance.md"
FIGURE = C.ROOT / "book" / "figures" / "scaling.png"
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
ANCHORS_START, ANCHORS_END = "<!-- anchors-table:start -->", "<!-- anchors-table:end -->"


def _load(name: str) -> dict | None:
    p = C.RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _machine(m: dict) -> str:
    cpu = (m.get("cpu") or "CPU").replace("(R)", "").replace("(TM)", "")
    gpu = f", {m['gpu']}" if m.get("gpu") else ""
    load = m.get("load_avg")
    return f"{cpu}, {m.get('cores')} cores / {m.get('torch_threads')} thr{gpu}" + (f", load {load[0]:.1f}" if load else "")


def _x(r: float) -> str:
    return f"{r:.1f}x" if r < 10 else f"{r:.0f}x"


def _n(x: int) -> str:
    return f"{x:,}"


def rows() -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    ev = _load("eval")
    if ev:
        mach = _machine(ev["machine"])
        for sc in ev["scales"]:
            st, est = sc["workload"], sc["estimated_all_queries_s"]
            size = f"{sc['label']}: {_n(st['queries'])} queries x {_n(st['candidates'])} candidates"
            ext = "*" if sc["ref_queries"] < st["queries"] else ""
            ext_loop = "*" if sc["loop_queries"] < st["queries"] else ""
            ours_s = est["ours (score matrix)"]
            ours_e = est["ours (embeddings)"]
            ours_e_ext = "" if sc.get("ours_embeddings_measured_on_all_queries") else "*"
            add = [
                ("Evaluation from the score matrix: rank + 6 metrics", f"{C.fmt_s(ours_s)}{ext}",
                 f"ranx, incl. top-k from S: {C.fmt_s(est['ranx (from S)'])}{ext}", est["ranx (from S)"] / ours_s),
                ("  same, ranx given the top-k (dict-building + Qrels/Run + evaluate)", f"{C.fmt_s(ours_s)}{ext}",
                 f"{C.fmt_s(est['ranx: with dict-building (dicts+ctor+evaluate)'])}{ext}",
                 est["ranx: with dict-building (dicts+ctor+evaluate)"] / ours_s),
                ("  same, ranx `evaluate` only (Qrels/Run prebuilt)", f"{C.fmt_s(ours_s)}{ext}",
                 f"{C.fmt_s(est['ranx: evaluate only'])}{ext}", est["ranx: evaluate only"] / ours_s),
                ("  same, per-query loop (public code: argsort + Python metrics)", f"{C.fmt_s(ours_s)}{ext}",
                 f"{C.fmt_s(est['per-query loop'])}{ext_loop}", est["per-query loop"] / ours_s),
                ("Evaluation from embeddings (d = 256; incl. the matrix product)", f"{C.fmt_s(ours_e)}{ours_e_ext}",
                 f"float32 matmul + ranx: {C.fmt_s(est['ranx (from embeddings) = float32 matmul + ranx (from S)'])}{ext}",
                 est["ranx (from embeddings) = float32 matmul + ranx (from S)"] / ours_e),
            ]
            if "ours unfused" in est:
                add.append(("  same, previous path: `rank` to depth max R + `evaluate_ranking`", C.fmt_s(ours_e),
                            C.fmt_s(est["ours unfused"]), est["ours unfused"] / ours_e))
            for stage, o, r, x in add:
                out.append({"stage": stage, "size": size, "ours": o, "reference": r, "ratio": _x(x), "machine": mach})
    bm = _load("bm25")
    if bm:
        mach = _machine(bm["machine"])
        for sc in bm["scales"]:
            size = f"{sc['label']}: {_n(sc['queries'])} queries x {_n(sc['docs'])} titles"
            est = sc["estimated_all_queries_s"]
            ext = "*" if sc["ref_queries"] < sc["queries"] else ""
            out.append({"stage": "BM25 over titles, dense [Q, N] scores (build + score)", "size": size,
                        "ours": C.fmt_s(est["ours dense"]), "reference": f"rank_bm25: {C.fmt_s(est['rank_bm25'])}{ext}",
                        "ratio": _x(sc["ratio_dense"]), "machine": mach})
            out.append({"stage": "  same, sparse scores (`score_sparse`)", "size": size,
                        "ours": C.fmt_s(est["ours sparse"]), "reference": f"rank_bm25: {C.fmt_s(est['rank_bm25'])}{ext}",
                        "ratio": _x(sc["ratio_sparse"]), "machine": mach})
    fe = _load("features")
    if fe:
        mach = _machine(fe["machine"])
        by = {(r["model"], r["kind"], r["batch"], r["workers"], r["amp"]): r for r in fe["images"]}
        for (model, kind, batch, workers, amp), r in by.items():
            if workers != 2 or amp:
                continue
            serial = by.get((model, kind, batch, 0, False))
            e2e = r["images_per_s"]["end to end"]
            ref = f"0 workers: {serial['images_per_s']['end to end']:.0f} img/s" if serial else "-"
            out.append({"stage": f"Image features {model}, {kind}, batch {batch}, 2 DataLoader workers",
                        "size": f"{r['images']} images", "ours": f"{e2e:.0f} img/s ({100 * r['decode_share']:.0f} % decode)",
                        "reference": ref, "ratio": _x(e2e / serial["images_per_s"]["end to end"]) if serial else "-",
                        "machine": mach})
        for (model, kind, batch, workers, amp), r in by.items():
            if model == "ViT-B-32" or amp:
                if model == "ViT-B-32" or kind == "png96":
                    out.append({"stage": f"Image features {model}, {kind}, batch {batch}, {workers} workers"
                                         + (", bf16 autocast forced" if amp else ""),
                                "size": f"{r['images']} images",
                                "ours": f"{r['images_per_s']['end to end']:.1f} img/s ({100 * r['decode_share']:.0f} % decode)",
                                "reference": "-", "ratio": "-", "machine": mach})
        text = {(r["model"].split("/")[-1], r["batch"]): r for r in fe["text"]}
        for (model, batch), r in text.items():
            if batch == 32:
                continue
            base = text.get((model, 32))
            out.append({"stage": f"Title features {model}, batch {batch}", "size": f"{r['sentences']} titles",
                        "ours": f"{r['sentences_per_s']:.0f} sent/s",
                        "reference": f"batch 32: {base['sentences_per_s']:.0f} sent/s" if base else "-",
                        "ratio": _x(r["sentences_per_s"] / base["sentences_per_s"]) if base else "-", "machine": mach})
    tr = _load("train")
    if tr:
        mach = _machine(tr["machine"])
        for r in tr["runs"]:
            meas = f"; 1 epoch measured {C.fmt_s(r['epoch_measured_s'])}" if "epoch_measured_s" in r else ""
            settings = ", ".join(s["setting"] for s in tr["settings"] if s["batch"] == r["batch"] and s["model"] == r["model"])
            out.append({"stage": f"Training {r['model']} ({r['input_dim']}-d input), batch {r['batch']} ({settings})",
                        "size": f"{_n(tr['train_pairs'])} train pairs, 30 epochs",
                        "ours": f"{r['steps_per_s']:.0f} steps/s; 30 epochs {C.fmt_s(r['epochs30_estimate_s'])}*{meas}",
                        "reference": "-", "ratio": "-", "machine": mach})
    ray = _load("ray")
    if ray and ray.get("rows"):
        mach = _machine(ray["machine"])
        for key, unit in (("rows", "workers"), ("shards", "shards")):
            pts = [r for r in ray.get(key, []) if isinstance(r.get(unit), int)]
            if len(pts) < 2:
                continue
            base, best = pts[0], max(pts, key=lambda r: r["speedup"])
            what = (f"Rows of Table 1 on Ray ({base['rows']} rows, `run_row`)" if key == "rows"
                    else f"Image features on Ray ({base['images']} images, ViT-B-32)")
            def n(r: dict) -> str:
                return f"{r[unit]} {unit if r[unit] != 1 else unit[:-1]}"

            out.append({"stage": what, "size": ", ".join(f"{n(r)}: {C.fmt_s(r['wall_s'])}" for r in pts),
                        "ours": f"{n(best)}: {C.fmt_s(best['wall_s'])}",
                        "reference": f"1 {unit[:-1]}: {C.fmt_s(base['wall_s'])}", "ratio": _x(best["speedup"]),
                        "machine": mach})
    return out


def anchor_rows() -> list[dict[str, str]]:
    """Rows of the anchors table (``anchors.json``): best-of-N times and their ratio, ours first."""
    an = _load("anchors")
    if not an:
        return []
    mach = _machine(an["machine"])
    out: list[dict[str, str]] = []

    def add(stage: str, size: str, ours: str, ref: str, ratio: float, checks: str, reps: int) -> None:
        out.append({"stage": stage, "size": size, "ours": ours, "anchor": ref, "anchor / ours": _x(ratio),
                    "same results": checks, "machine": f"{mach}; best of {reps}"})

    for r in an.get("faiss", []):
        st, b, ch = r["workload"], r["best_s"], r["checks"]
        size = f"{r['label']}: {_n(st['queries'])} x {_n(st['candidates'])}, d = {st['dim']}"
        same = (f"top 10 identical in {_n(ch['rows_identical'])} / {_n(ch['rows'])} rows"
                + (f"; {ch['rows_float32_near_ties']} float32 near-tie rows (exact gap "
                   f"{ch['max_exact_gap_in_those_rows']:.1g})" if ch["rows_float32_near_ties"] else ""))
        add("Exact top 10 + 6 metrics from embeddings (`evaluate_embeddings`)", size,
            C.fmt_s(b["ours (top-10 + 6 metrics)"]), f"faiss IndexFlatIP top 10: {C.fmt_s(b['faiss IndexFlatIP'])}",
            r["ratio_best"]["faiss / ours (top-10 + 6 metrics)"], same, r["repeats"])
        add("  same, exact top 10 only (`rank`, k = 10)", size, C.fmt_s(b["ours (top-10 only)"]),
            f"faiss: {C.fmt_s(b['faiss IndexFlatIP'])}", r["ratio_best"]["faiss / ours (top-10 only)"], same, r["repeats"])
        gemm = b["float32 GEMM (numpy, as ours)"]
        add("  the float32 GEMM alone (`numpy.matmul`, as ours), the floor of both", size, C.fmt_s(gemm),
            f"faiss: {C.fmt_s(b['faiss IndexFlatIP'])}", b["faiss IndexFlatIP"] / gemm, "-", r["repeats"])
    for r in an.get("bm25s", []):
        b, ch = r["best_s"], r["checks"]
        size = f"{r['label']}: {_n(r['queries'])} queries x {_n(r['docs'])} titles"
        same = (f"bm25s robertson x (k1 + 1) = BM25Okapi to {ch['max_rel_diff_float64_clean_queries']:.0e} (rel., float64; "
                f"{ch['queries_with_negative_idf_term']} queries with a negative-idf term), float32 default "
                f"{ch['max_abs_diff_float32_default']:.0e} abs.")
        add("BM25 dense [Q, N] scores (index + score all)", size, C.fmt_s(b["ours dense (score_matrix)"]),
            f"bm25s index + get_scores: {C.fmt_s(b['bm25s index + get_scores'])}",
            r["ratio_best"]["bm25s get_scores / ours dense"], same, r["repeats"])
        add("  top 10 per query (index + top-k)", size, C.fmt_s(b["ours index + exact top-10"]),
            f"bm25s index + retrieve: {C.fmt_s(b['bm25s index + retrieve top-10'])}",
            r["ratio_best"]["bm25s retrieve / ours top-10"],
            "top-10 scores equal (float32); ids equal where scores differ"
            if ch["retrieve_ids_equal_where_scores_distinct"] else "top-10 scores equal; ids differ", r["repeats"])
        add("  same dense scores", size, C.fmt_s(b["ours dense (score_matrix)"]),
            f"rank_bm25: {C.fmt_s(b['rank_bm25 (all queries, scaled)'])}*",
            r["ratio_best"]["rank_bm25 / ours dense"], "bit-identical (bench_bm25)", r["repeats"])
    for s in an.get("skipped", []):
        out.append({"stage": f"anchor not run: {s}", "size": "-", "ours": "-", "anchor": "-", "anchor / ours": "-",
                    "same results": "-", "machine": mach})
    return out


def anchors_markdown(rs: list[dict[str, str]]) -> str:
    head = ["stage", "size", "ours", "anchor", "anchor / ours", "same results", "machine"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r[h].replace("|", "/") for h in head) + " |" for r in rs]
    lines += ["", "Ratios above 1: ours is faster. Times are the best of N interleaved rounds (the machine is "
                  "shared); \\* rank_bm25 timed on a subset of the queries and scaled."]
    return "\n".join(lines)


def _replace_block(page: str, start: str, end: str, text: str) -> str:
    if start not in page or end not in page:
        raise SystemExit(f"{PAGE}: markers {start} / {end} not found")
    a, b = page.index(start) + len(start), page.index(end)
    return page[:a] + "\n" + text + "\n" + page[b:]


# What ``run_all.py``'s mode means to a reader of the table (its ``--quick`` / ``--full`` help).
MODES = {"quick": "the quick sizes of `make bench` (`benchmarks/run_all.py --quick`, sized to finish in about "
                  "15 minutes on 2 CPU cores; `--full` times bigger samples and sizes)",
         "full": "the full sizes (`benchmarks/run_all.py --full`: bigger samples and sizes than `make bench`'s "
                 "quick default, about an hour on 2 cores)"}


def sizes_sentence(run: dict) -> str:
    """One sentence on the sample sizes and threads the table was measured with, from ``run_all.json``."""
    mode = run.get("mode")
    if mode is None:
        return "The benchmark sizes were not recorded (no `benchmarks/results/run_all.json`)."
    what = MODES.get(str(mode), f"benchmark mode {mode!r}")
    threads = f"{run['threads']} torch / numba threads" if run.get("threads") else "torch's default threads (all cores)"
    when = (f" at commit {str(run['git_commit'])[:12]}" if run.get("git_commit") else "") + (
        f", {run['finished_at']}" if run.get("finished_at") else "")
    return f"Measured with {what}, {threads}{when}."


def table_markdown(rs: list[dict[str, str]]) -> str:
    if not rs:
        return "(no results yet: run `make bench`)"
    head = ["stage", "size", "ours", "reference", "ratio", "machine"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rs:
        lines.append("| " + " | ".join(r[h].replace("|", "/") for h in head) + " |")
    lines.append("")
    lines.append("\\* extrapolated: timed on a subset of the queries (or a few training steps) and scaled linearly; "
                 "see the benchmark scripts. " + sizes_sentence(_load("run_all") or {}))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--print", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    main_rows, anchors = rows(), anchor_rows()
    table = table_markdown(main_rows)
    if args.print:
        print(table)
        if anchors:
            print("\n" + anchors_markdown(anchors))
        return 0
    page = PAGE.read_text()
    if main_rows:
        page = _replace_block(page, START, END, table)
    if anchors:
        page = _replace_block(page, ANCHORS_START, ANCHORS_END, anchors_markdown(anchors))
    PAGE.write_text(page)
    scaling = _load("scaling")
    if scaling:  # drawn again from the JSON: the Ray panel comes from bench_ray.py, which runs later
        import bench_scaling

        bench_scaling.plot(scaling, FIGURE, _load("ray"))
    print(f"updated {PAGE.relative_to(C.ROOT)}" + (f" and {FIGURE.relative_to(C.ROOT)}" if scaling else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
