"""Evaluation benchmark: rank every test candidate for every query, then P@1/5/10, MAP@5/10, R-precision.

Contenders (all on the same synthetic workload, see :func:`common.eval_workload`):

* ``ours (embeddings)``: :func:`cti_repro.evaluation.ranking.evaluate_embeddings`: embeddings -> exact
  fixed-point scores (float32 prefilter) -> fused top-10 + R-precision counts -> metrics, for the
  three AP normalisations. Includes the matrix product.
* ``ours (score matrix)``: :func:`cti_repro.evaluation.ranking.evaluate_scores` on the exact score matrix S.
* ``ours unfused``: ``rank(k = max R, float64)`` + ``evaluate_ranking`` (3 norms): the path the
  runner took before the fused evaluator existed.
* ``ranx``: S -> per-query top max(10, R) (torch.topk, bucketed by depth; *not* ranx's work but
  needed to feed it) -> Python dicts -> ``Qrels``/``Run`` -> ``ranx.evaluate`` (warm: its numba
  JIT is compiled by an untimed call first). Timed in parts.
* ``per-query loop``: what the public code does: per query ``np.argsort`` of the score row, then
  Python metric functions (starts from S; includes one column permutation into tie order).

Every contender's per-query values are checked against ours before anything is timed: rankings
identical, metrics bit-identical for our own paths and within 1e-9 percentage points for ranx and
the loop (different summation order); the largest difference is recorded.
"""

from __future__ import annotations

import os

import numpy as np
import torch

import common as C
from cti_repro.evaluation.metrics import AP_NORMS
from cti_repro.evaluation.evaluate import evaluate_embeddings, evaluate_ranking, evaluate_scores
from cti_repro.evaluation.ranking import FIXED_POINT_BITS, _fixed_point, rank, required_depth

RANX_METRICS = ["precision@1", "precision@5", "precision@10", "map@5", "map@10", "r-precision"]
OURS_FOR_RANX = ["P@1", "P@5", "P@10", "MAP@5", "MAP@10", "R-precision"]  # ranx map@k = AP with norm "R"


def exact_scores(w: dict, rows: slice = slice(None)) -> np.ndarray:
    """The exact fixed-point score matrix that ``rank`` orders by (float64, candidate order)."""
    q = _fixed_point(w["queries"][rows], True)
    c = _fixed_point(w["candidates"], True)
    return ((q @ c.T) * 2.0 ** (-2 * FIXED_POINT_BITS)).numpy()


def sub(w: dict, rows: slice) -> dict:
    out = dict(w)
    out["queries"], out["query_labels"], out["n_rel"] = w["queries"][rows], w["query_labels"][rows], w["n_rel"][rows]
    return out


# ---- contenders ---------------------------------------------------------------------------------
def ours_embeddings(w: dict):
    return evaluate_embeddings(w["queries"], w["candidates"], w["query_labels"], w["candidate_labels"],
                               tie_key=w["tie_key"], ap_norms=AP_NORMS)


def ours_scores(w: dict, s: np.ndarray):
    return evaluate_scores(s, w["query_labels"], w["candidate_labels"], tie_key=w["tie_key"], ap_norms=AP_NORMS)


def ours_unfused(w: dict):
    idx, _ = rank(w["queries"], w["candidates"], required_depth(w["n_rel"]), tie_key=w["tie_key"], prefilter=False)
    return idx, {n: evaluate_ranking(idx, w["query_labels"], w["candidate_labels"], n) for n in AP_NORMS}


def topk_for_ranx(s: np.ndarray, n_rel: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per query, the top max(10, R) columns and scores, best first: ``torch.topk`` on rows grouped
    by depth (powers of two), the fastest of the ways we tried (``np.argpartition`` + sort was slower)."""
    n = s.shape[1]
    depth = np.minimum(np.maximum(10, n_rel), n)
    st = torch.from_numpy(s)
    idx: list = [None] * len(s)
    val: list = [None] * len(s)
    bucket = np.ceil(np.log2(depth)).astype(int)
    for b in np.unique(bucket):
        rows = np.flatnonzero(bucket == b)
        v, i = torch.topk(st[torch.from_numpy(rows)], int(depth[rows].max()), dim=1)
        v, i = v.numpy(), i.numpy()
        for j, r in enumerate(rows):
            idx[r], val[r] = i[j, : depth[r]], v[j, : depth[r]]
    return idx, val


class Ranx:
    """ranx fed from the score matrix; records the time of each part of the last call."""

    def __init__(self, w: dict, s: np.ndarray):
        self.w, self.s = w, s
        self.docids = np.array([f"d{j:08d}" for j in range(s.shape[1])])
        self.qids = [f"q{i:08d}" for i in range(s.shape[0])]  # zero-padded: ranx's sorted order = ours
        self.parts: dict[str, list[float]] = {"topk": [], "dicts": [], "ctor": [], "evaluate": []}

    def __call__(self):
        from ranx import Qrels, Run, evaluate

        w = self.w
        t_topk, (idx, val) = C.timed(lambda: topk_for_ranx(self.s, w["n_rel"]))

        def dicts():
            c_lab = w["candidate_labels"]
            order = np.argsort(c_lab, kind="stable")
            labs, starts = np.unique(c_lab[order], return_index=True)
            groups = dict(zip(labs.tolist(), np.split(self.docids[order], starts[1:])))
            qrels = {qid: dict.fromkeys(groups[lab].tolist(), 1) for qid, lab in zip(self.qids, w["query_labels"].tolist())}
            run = {qid: dict(zip(self.docids[i].tolist(), v.tolist())) for qid, i, v in zip(self.qids, idx, val)}
            return qrels, run

        t_dicts, (qd, rd) = C.timed(dicts)
        t_ctor, (qrels, run) = C.timed(lambda: (Qrels(qd), Run(rd)))
        t_eval, res = C.timed(lambda: evaluate(qrels, run, RANX_METRICS, return_mean=False))
        for name, t in zip(self.parts, (t_topk, t_dicts, t_ctor, t_eval)):
            self.parts[name].append(t)
        self.last = (qrels, run)
        return res

    def evaluate_sorted(self, repeats: int) -> dict:
        """``ranx.evaluate`` again on the last Qrels/Run (already sorted by the first call)."""
        from ranx import evaluate

        qrels, run = self.last
        return C.summary([C.timed(lambda: evaluate(qrels, run, RANX_METRICS, return_mean=False))[0]
                          for _ in range(repeats)])


def _precision(r: np.ndarray, k: int) -> float:
    return float(np.mean(r[:k]))


def _ap(r: np.ndarray, k: int, big_r: int, norm: str) -> float:
    hits, total = 0, 0.0
    for j in range(k):
        if r[j]:
            hits += 1
            total += hits / (j + 1)
    z = {"hits": hits, "min_k_R": min(k, big_r), "R": big_r}[norm]
    return total / z if z else 0.0


def loop_eval(w: dict, s: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, dict]:
    """The public code's style: argsort each score row, then Python metric functions."""
    order = np.argsort(w["tie_key"], kind="stable")
    s_tie = s[:, order]  # columns in tie order: a stable argsort then breaks ties by tie key
    lab = w["candidate_labels"][order]
    out = {n: {m: [] for m in OURS_FOR_RANX} for n in AP_NORMS}
    top = []
    for i in rows:
        ranking = np.argsort(-s_tie[i], kind="stable")
        r = lab[ranking] == w["query_labels"][i]
        big_r = int(w["n_rel"][i])
        top.append(order[ranking[:10]])
        for n in AP_NORMS:
            m = out[n]
            m["P@1"].append(100 * _precision(r, 1))
            m["P@5"].append(100 * _precision(r, 5))
            m["P@10"].append(100 * _precision(r, 10))
            m["MAP@5"].append(100 * _ap(r, 5, big_r, n))
            m["MAP@10"].append(100 * _ap(r, 10, big_r, n))
            m["R-precision"].append(100 * float(np.mean(r[:big_r])) if big_r else 0.0)
    return np.array(top), out


# ---- checks -------------------------------------------------------------------------------------
def check_equal(w: dict, s: np.ndarray, ref_rows: np.ndarray, ranx: Ranx, check_unfused: bool) -> dict:
    idx, ours = ours_embeddings(w)
    idx_s, ours_s = ours_scores(w, s)
    assert torch.equal(idx, idx_s), "evaluate_scores ranking differs from evaluate_embeddings"
    for n in AP_NORMS:
        for m in ours[n]:
            assert np.array_equal(ours[n][m], ours_s[n][m]), (n, m)
    if check_unfused:
        idx_u, unf = ours_unfused(w)
        assert torch.equal(idx, idx_u[:, :10]), "fused ranking differs from rank()"
        for n in AP_NORMS:
            for m in ours[n]:
                assert np.array_equal(ours[n][m], unf[n][m]), ("unfused", n, m)
    top, loop = loop_eval(w, s, ref_rows)
    assert np.array_equal(top, idx[ref_rows].numpy()), "loop ranking differs"
    diff_loop = max(float(np.abs(np.array(loop[n][m]) - ours[n][m][ref_rows]).max()) for n in AP_NORMS for m in loop[n])
    assert diff_loop <= 1e-9, diff_loop
    res = ranx()
    diff_ranx = max(float(np.abs(100 * np.asarray(res[rm]) - ours["R"][om]).max()) for rm, om in zip(RANX_METRICS, OURS_FOR_RANX))
    assert diff_ranx <= 1e-9, diff_ranx
    # ranx orders equal scores its own way; with no ties in any top max(10, R) + 1 both agree.
    return {"rankings_identical": True, "ours_fused_vs_unfused": "bit-identical" if check_unfused else "not checked",
            "max_abs_diff_loop_pct": diff_loop, "max_abs_diff_ranx_pct": diff_ranx,
            "means": {m: float(np.mean(v)) for m, v in ours["hits"].items()}}


# ---- one scale ----------------------------------------------------------------------------------
def bench_scale(label: str, n_q: int, n_c: int, repeats: int, ref_queries: int, loop_queries: int,
                ours_full: bool, unfused: bool) -> dict:
    """Time the contenders at one size. References (ranx, loop, unfused) run on the first
    ``ref_queries`` / ``loop_queries`` queries and are scaled linearly to all ``n_q`` (marked)."""
    w = C.eval_workload(n_q, n_c)
    ref_q = min(ref_queries, n_q)
    ws = sub(w, slice(0, ref_q)) if ref_q < n_q else w
    s = exact_scores(ws)
    ranx = Ranx(ws, s)
    loop_rows = np.arange(min(loop_queries, ref_q))
    checks = check_equal(ws, s, loop_rows[: min(len(loop_rows), 2000)], ranx, unfused and ref_q * n_c <= 4e7)
    ranx.parts = {k: [] for k in ranx.parts}
    q32, c32 = ws["queries"], ws["candidates"]
    contenders = {
        "float32 score matrix (q @ c.T)": lambda: (q32 @ c32.T).numpy(),  # what feeding ranx needs first
        "ours (embeddings)": lambda: ours_embeddings(ws),
        "ours (score matrix)": lambda: ours_scores(ws, s),
        "ranx (from S)": ranx,
        "per-query loop": lambda: loop_eval(ws, s, loop_rows),
    }
    if unfused:
        contenders["ours unfused"] = lambda: ours_unfused(ws)
    times = C.interleaved(contenders, repeats, warmup={"ours (embeddings)", "ours (score matrix)", "ranx (from S)",
                                                      "float32 score matrix (q @ c.T)", "ours unfused"})
    ranx_parts = {k: C.summary(v[1:]) for k, v in ranx.parts.items()}  # [0] is the warm-up call
    ranx_parts["evaluate (run already sorted)"] = ranx.evaluate_sorted(repeats)
    scale_ref = n_q / ref_q
    scale_loop = n_q / len(loop_rows)
    res = {"label": label, "workload": w["stats"], "checks": checks, "ref_queries": ref_q,
           "loop_queries": int(len(loop_rows)), "extrapolation": {"refs_x": scale_ref, "loop_x": scale_loop},
           "times_subset": times, "ranx_parts_subset": ranx_parts}
    # Scaled to all queries (linear in the number of queries; factor 1 when nothing was cut).
    est = {name: t["median_s"] * (scale_loop if name == "per-query loop" else scale_ref) for name, t in times.items()}
    for part, t in ranx_parts.items():
        est[f"ranx: {part}"] = t["median_s"] * scale_ref
    est["ranx: with dict-building (dicts+ctor+evaluate)"] = sum(est[f"ranx: {p}"] for p in ("dicts", "ctor", "evaluate"))
    est["ranx: evaluate only"] = est["ranx: evaluate"]
    est["ranx (from embeddings) = float32 matmul + ranx (from S)"] = est["float32 score matrix (q @ c.T)"] + est["ranx (from S)"]
    if ours_full and ref_q < n_q:
        full = C.interleaved({"ours (embeddings)": lambda: ours_embeddings(w)}, max(1, repeats // 2), warmup=False)
        res["times_full"] = full
        est["ours (embeddings)"] = full["ours (embeddings)"]["median_s"]
        res["ours_embeddings_measured_on_all_queries"] = True
    else:
        res["ours_embeddings_measured_on_all_queries"] = ref_q == n_q
    res["estimated_all_queries_s"] = est
    ours_s = times["ours (score matrix)"]
    res["ratios_same_input"] = {
        "ranx (from S) / ours (score matrix)": C.ratio(times["ranx (from S)"], ours_s),
        "loop / ours (score matrix)": {"ratio_of_medians": est["per-query loop"] / est["ours (score matrix)"]},
        "ranx with dict-building / ours (score matrix)":
            {"ratio_of_medians": est["ranx: with dict-building (dicts+ctor+evaluate)"] / est["ours (score matrix)"]},
        "ranx evaluate only / ours (score matrix)": {"ratio_of_medians": est["ranx: evaluate only"] / est["ours (score matrix)"]},
        "ranx (from embeddings) / ours (embeddings)": {"ratio_of_medians":
            est["ranx (from embeddings) = float32 matmul + ranx (from S)"] / est["ours (embeddings)"]},
    }
    if unfused:
        res["ratios_same_input"]["ours unfused / ours (embeddings)"] = C.ratio(times["ours unfused"], times["ours (embeddings)"])
    return res


def print_scale(r: dict) -> None:
    st = r["workload"]
    print(f"\n== evaluation, {r['label']}: {st['queries']} queries x {st['candidates']} candidates, d={st['dim']}, "
          f"R median {st['R_median']:.0f} / max {st['R_max']} ==")
    if r["ref_queries"] < st["queries"]:
        print(f"   references timed on {r['ref_queries']} queries (loop: {r['loop_queries']}) and scaled linearly "
              f"to {st['queries']} (EXTRAPOLATED)")
    est = r["estimated_all_queries_s"]
    rows = [[name, C.fmt_s(t)] for name, t in est.items()]
    C.print_table(rows, ["contender", "median time (all queries)"])
    for name, rt in r["ratios_same_input"].items():
        print(f"   {name}: {rt['ratio_of_medians']:.1f}x")


def run(quick: bool = True) -> dict:
    p = C.PAPER
    out = {"machine": C.machine(), "mode": "quick" if quick else "full", "scales": []}
    paper = bench_scale("paper scale", p["queries"], p["candidates"], repeats=3 if quick else 7,
                        ref_queries=p["queries"], loop_queries=p["queries"], ours_full=False, unfused=True)
    print_scale(paper)
    out["scales"].append(paper)
    # the same on a busy machine: as many competing CPU-bound processes as cores
    n_busy = os.cpu_count() or 1
    with C.Busy(n_busy):
        busy = bench_scale(f"paper scale, busy ({n_busy} competing processes)", p["queries"], p["candidates"],
                           repeats=3 if quick else 7, ref_queries=p["queries"], loop_queries=p["queries"] // 4,
                           ours_full=False, unfused=False)
        busy["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print_scale(busy)
    out["scales"].append(busy)
    # every product a candidate (the first author's protocol, our `eval.candidates: all`): the
    # paper's 5,471 queries x 38,921 products
    every = bench_scale("paper scale, all products", p["queries"], p["products"], repeats=2 if quick else 5,
                        ref_queries=2000 if quick else p["queries"], loop_queries=300 if quick else 1000,
                        ours_full=True, unfused=False)
    print_scale(every)
    out["scales"].append(every)
    ten = bench_scale("10x", 10 * p["queries"], 10 * p["candidates"], repeats=2 if quick else 3,
                      ref_queries=2000 if quick else p["queries"], loop_queries=300 if quick else 2000,
                      ours_full=True, unfused=False)
    print_scale(ten)
    out["scales"].append(ten)
    out["machine_end"] = C.machine()
    C.write_json("eval", out)
    return out


if __name__ == "__main__":
    C.cli_main(run, __doc__)
