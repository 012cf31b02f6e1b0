"""Run every benchmark, print the tables and write JSON to ``benchmarks/results/`` (``make bench``).

    python benchmarks/run_all.py                 # --quick (default): < 15 min on 2 cores
    python benchmarks/run_all.py --full          # larger samples, more repeats, 10x measured in full
    python benchmarks/run_all.py --threads 1     # one thread per library (for oversubscribed machines)
    python benchmarks/run_all.py --only eval,bm25
    python benchmarks/run_all.py --update-book   # then refresh book/performance.md and the figure

Benchmarks: ``eval`` (ranking + metrics: ours vs ranx vs a per-query loop), ``bm25`` (ours vs
rank_bm25), ``anchors`` (ours vs faiss-cpu's exact top-k and vs bm25s, best of N; the ``[bench]``
extra), ``features`` (images/s, sentences/s), ``train`` (steps/s, 30-epoch time), ``scaling``
(stage time vs catalogue size + figure), ``ray`` (rows on Ray with 1-4 workers, 8 with ``--full``,
and image features in 1-4 shards; local Ray clusters; the figure's second panel). See each
``bench_*.py`` for what is timed and how.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as C  # noqa: E402

# anchors: faiss-cpu and bm25s (the [bench] extra), each skipped when not installed; ray: the [ray] extra
ORDER = ("eval", "bm25", "anchors", "features", "train", "scaling", "ray")
OPTIONAL: tuple[str, ...] = ()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="default: fits in 15 minutes on 2 CPU cores")
    mode.add_argument("--full", action="store_true", help="bigger samples and sizes (about an hour on 2 cores)")
    ap.add_argument("--threads", type=int, default=None, help="torch/numba threads (default: all cores)")
    ap.add_argument("--only", default=",".join(ORDER), help=f"comma-separated subset of {','.join(ORDER)}")
    ap.add_argument("--update-book", action="store_true", help="run render.py afterwards (book page + figure)")
    args = ap.parse_args(argv)
    quick = not args.full
    C.set_threads(args.threads)
    todo = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(todo) - set(ORDER) - set(OPTIONAL)
    if unknown:
        ap.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {ORDER + OPTIONAL}")

    t0 = time.perf_counter()
    m = C.machine()
    print(f"machine: {C.machine_label(m)}; load average {m['load_avg']}; mode {'quick' if quick else 'full'}")
    timings = {}
    for name in ORDER + OPTIONAL:
        if name not in todo:
            continue
        t = time.perf_counter()
        module = __import__(f"bench_{name}")
        module.run(quick=quick)
        timings[name] = round(time.perf_counter() - t, 1)
        print(f"[{name}: {timings[name]:.0f} s]")
    total = time.perf_counter() - t0
    from cti_repro.results import git_commit

    # the commit and date let the performance page say which code its table measured
    C.write_json("run_all", {"mode": "quick" if quick else "full", "threads": args.threads, "benchmarks_s": timings,
                             "git_commit": git_commit(C.ROOT), "finished_at": time.strftime("%Y-%m-%d %H:%M %Z"),
                             "total_s": round(total, 1), "machine_start": m, "machine_end": C.machine()})
    import render

    print("\n== summary ==")
    print(render.table_markdown(render.rows()))
    anchors = render.anchor_rows()
    if anchors:
        print("\n== anchors (anchor / ours: above 1, ours is faster) ==")
        print(render.anchors_markdown(anchors))
    print(f"\ntotal {total / 60:.1f} min; JSON in {C.RESULTS}")
    if args.update_book:
        render.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
