"""Shared helpers of the benchmarks: timing, machine description, synthetic workloads, JSON output.

Timing rules (the machine is shared and noisy):

* every contender gets one untimed warm-up call (JIT, page faults of fresh memory, caches);
* contenders of one comparison run *interleaved* (A B C, A B C, ...), so load spikes hit all of
  them alike; each reports the median of its runs and the spread (min, max);
* a ratio is ``median(reference) / median(ours)`` from the same interleaved run, plus the median
  of the per-round ratios;
* anything not timed in full (a subset of queries, a few steps) says so with ``extrapolated``
  and the factor it was scaled by.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("CTI_BENCH_RESULTS", ROOT / "benchmarks" / "results"))  # override for side runs
sys.path.insert(0, str(ROOT))  # run from a clean clone without installing

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The paper's XMarket numbers (cti_repro/resources/published.yml): products, category queries,
# pairs; the test candidates are the 10% test split of the products.
from cti_repro.report.paper import dataset as _published_dataset  # noqa: E402

_D = _published_dataset()
PAPER = {"products": _D["products"], "candidates": round(0.1 * _D["products"]), "queries": _D["unique_categories"],
         "pairs": _D["category_product_pairs"]}
QUERY_RATIO = PAPER["queries"] / PAPER["candidates"]  # queries per candidate, kept at every scale


def _burn(stop) -> None:  # a competing job: single-threaded numpy work until told to stop
    a = np.random.default_rng(0).standard_normal((256, 256))
    while not stop.is_set():
        a = np.tanh(a @ a.T / 256.0)


class Busy:
    """``with Busy(n):`` runs ``n`` competing CPU-bound processes (single-threaded matrix work), so
    that a benchmark measures the machine busy, reproducibly, instead of whatever else runs."""

    def __init__(self, n: int) -> None:
        self.n, self.procs = n, []

    def __enter__(self) -> Busy:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        env = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update({v: "1" for v in env})  # the children's BLAS: one thread each
        try:
            self.procs = [ctx.Process(target=_burn, args=(self.stop,), daemon=True) for _ in range(self.n)]
            for proc in self.procs:
                proc.start()
        finally:
            for v, old in env.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old
        time.sleep(1.0)  # let them start
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def set_threads(n: int | None) -> None:
    """Use ``n`` threads in torch (intra-op, MKL/OpenMP) and numba (ranx); None keeps the defaults.

    On a shared, oversubscribed machine one thread per process is often *faster* than two: every
    parallel torch op ends in a barrier that waits for a descheduled thread.
    """
    if not n:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch

    torch.set_num_threads(n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(contenders: dict[str, Callable[[], Any]], repeats: int, warmup: Any = True) -> dict[str, dict]:
    """Time each contender ``repeats`` times, round-robin, after one untimed warm-up call each.

    Args:
        warmup: True (all), False (none) or the names of the contenders to warm up (those with a
            JIT or lazy initialisation; a slow pure-Python reference needs none).

    Returns:
        ``{name: {"median_s", "min_s", "max_s", "runs_s"}}``.
    """
    for name, fn in contenders.items():
        if warmup is True or (warmup and name in warmup):
            fn()
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            runs[name].append(timed(fn)[0])
    return {name: summary(ts) for name, ts in runs.items()}


def summary(ts: list[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts), "runs_s": [round(t, 5) for t in ts]}


def ratio(ref: dict, ours: dict) -> dict[str, float]:
    """Speed-up of ``ours`` over ``ref`` from one interleaved run: ratio of medians, and the median
    (min, max) of the per-round ratios."""
    per_round = [a / b for a, b in zip(ref["runs_s"], ours["runs_s"]) if b > 0]
    out = {"ratio_of_medians": ref["median_s"] / ours["median_s"]}
    if per_round:
        out.update(per_round_median=statistics.median(per_round), per_round_min=min(per_round),
                   per_round_max=max(per_round))
    return out


def machine() -> dict[str, Any]:
    """What the numbers were measured on (CPU, cores, threads, versions, load)."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        import numba

        numba_threads = numba.get_num_threads()
    except ImportError:
        numba_threads = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "numba_threads": numba_threads,
        "ram_gib": mem,
        "gpu": gpu, "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "platform": platform.platform(),
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def machine_label(m: dict[str, Any]) -> str:
    dev = m.get("gpu") or "no GPU"
    return f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('torch_threads')} threads, {dev}"


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, path)
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def fmt_s(t: float | None) -> str:
    """Seconds, human-sized."""
    if t is None or (isinstance(t, float) and np.isnan(t)):
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1:
        return f"{t * 1e3:.0f} ms"
    if t < 120:
        return f"{t:.2f} s"
    if t < 7200:
        return f"{t / 60:.1f} min"
    return f"{t / 3600:.1f} h"


def print_table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [[str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


# ---- synthetic workloads ------------------------------------------------------------------------
def scale_sizes(products: int) -> dict[str, int]:
    """Candidates (the 10 % test split) and queries (paper's ratio of queries to candidates)."""
    n = max(10, round(products * PAPER["candidates"] / PAPER["products"]))
    return {"products": products, "candidates": n, "queries": max(1, round(n * QUERY_RATIO))}


def eval_workload(n_queries: int, n_candidates: int, dim: int = 256, seed: int = 0) -> dict[str, Any]:
    """Random embeddings with Zipf-distributed category labels.

    Candidates draw one of ``C = n_candidates / 2`` categories with probability ~ 1 / rank (a few
    big categories, many small ones, as in a shop). The queries cover every category present among
    the candidates once, the rest are drawn from them at random, so every query has R >= 1 relevant
    candidates (several queries can share a category, as different prompts would). ``tie_key`` is a
    random permutation, like the rank of a product id.
    """
    rng = np.random.default_rng(seed)
    n_cat = max(1, n_candidates // 2)
    p = 1.0 / np.arange(1, n_cat + 1)
    c_lab = rng.choice(n_cat, n_candidates, p=p / p.sum())
    present = np.unique(c_lab)
    extra = rng.choice(present, max(0, n_queries - len(present)))
    q_lab = rng.permutation(np.concatenate([present, extra])[:n_queries])
    n_rel = np.bincount(c_lab, minlength=n_cat)[q_lab]
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "queries": torch.randn(n_queries, dim, generator=g), "candidates": torch.randn(n_candidates, dim, generator=g),
        "query_labels": q_lab.astype(np.int64), "candidate_labels": c_lab.astype(np.int64),
        "tie_key": rng.permutation(n_candidates), "n_rel": n_rel,
        "stats": {"queries": n_queries, "candidates": n_candidates, "dim": dim, "categories_present": int(len(present)),
                  "R_median": float(np.median(n_rel)), "R_p99": float(np.percentile(n_rel, 99)),
                  "R_max": int(n_rel.max()), "queries_R_gt_10": int((n_rel > 10).sum())},
    }


def titles_and_queries(n_titles: int, n_queries: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Product titles and category-name queries in the style of the synthetic catalogue.

    Titles come from :mod:`cti_repro.data.synthetic`'s title generator over its category tree
    (Zipf-skewed leaves); queries are node names or "parent leaf" pairs of that tree (the tree has
    ~700 nodes, so queries repeat at paper scale; BM25 cost depends on their terms, not on that).
    """
    try:
        return _synthetic_titles(n_titles, n_queries, seed)
    except (ImportError, AttributeError, TypeError) as exc:  # the generator's internals changed
        print(f"   (synthetic title generator unavailable: {type(exc).__name__}; using a plain vocabulary)")
        rng = np.random.default_rng(seed)
        vocab = np.array([f"w{i}" for i in range(5000)])
        p = 1.0 / np.arange(1, len(vocab) + 1)
        pick = lambda k: " ".join(rng.choice(vocab, k, p=p / p.sum()))  # noqa: E731
        return [pick(int(rng.integers(4, 12))) for _ in range(n_titles)], \
            [pick(int(rng.integers(1, 4))) for _ in range(n_queries)]


def _synthetic_titles(n_titles: int, n_queries: int, seed: int) -> tuple[list[str], list[str]]:
    from cti_repro.data import synthetic as S

    nodes = S.category_tree()
    leaves = [n for n in nodes if n.is_leaf]
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, len(leaves) + 1) ** S.ZIPF_EXPONENT
    picks = rng.choice(len(leaves), n_titles, p=w / w.sum())
    colours = list(getattr(S.V, "COLOURS", {"Black": None}))
    titles = []
    for j, i in enumerate(picks):
        r = random.Random(seed * 1_000_003 + j)
        titles.append(S._title(leaves[i].path, leaves[i].synonyms, r.choice(colours), r))
    r = random.Random(seed + 1)
    queries = []
    for _ in range(n_queries):
        node = r.choice(nodes)
        two = len(node.path) >= 2 and r.random() < 0.5
        queries.append(f"{node.path[-2]} {node.path[-1]}" if two else node.path[-1])
    return titles, queries


def cli_main(run: Callable[..., Any], doc: str | None) -> None:
    """The shared ``__main__`` of each ``bench_*.py``: ``--full`` and ``--threads``, then ``run``."""
    import argparse

    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    ap.add_argument("--full", action="store_true", help="bigger samples, more repeats")
    ap.add_argument("--threads", type=int, default=None, help="torch/numba threads (default: all cores)")
    args = ap.parse_args()
    set_threads(args.threads)
    run(quick=not args.full)
