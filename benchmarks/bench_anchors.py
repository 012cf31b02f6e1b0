"""Anchors a user would pick instead: faiss-cpu for exact top-k from embeddings, bm25s for BM25.

Needs the ``[bench]`` extra (``pip install -e ".[bench]"``; ``make bench`` installs it); a missing
anchor is reported and skipped, never faked.

**Exact top-k from embeddings** (random unit vectors, d = 256, :func:`common.eval_workload`), at
paper scale (5,471 x 3,892 test candidates) and with all products as candidates (5,471 x 38,921):

* ``faiss IndexFlatIP``: float32 L2-normalisation (``faiss.normalize_L2``), ``add``, ``search`` top 10:
  the tool a user would reach for; faiss uses as many OpenMP threads as torch does here.
* ``ours (top-10 + 6 metrics)``: :func:`cti_repro.evaluation.evaluate.evaluate_embeddings` (exact
  fixed-point order, ties by tie key, P@1/5/10, MAP@5/10 under three AP normalisations, R-precision).
* ``ours (top-10 only)``: :func:`cti_repro.evaluation.ranking.rank` with ``k = 10``: what faiss returns.
* ``float32 GEMM (numpy, as ours)``: the score matrix alone (numpy.matmul in chunks of 1,024 rows,
  as ours computes it), the floor both sides pay.

Identical results asserted before timing (:func:`check_faiss`): faiss's top 10 equals ours in
every row, except rows where faiss's float32 scores cannot order two candidates (their exact
scores closer than float32's error bound); those rows are counted, and even there each position's
exact score must agree within that bound.

**BM25 over titles** (:func:`common.titles_and_queries`, the tokens of
:func:`cti_repro.models.baselines.tokenize`): ours (:class:`~cti_repro.models.baselines.SparseBM25`,
bit-identical to ``rank_bm25.BM25Okapi``) against ``bm25s`` with ``method="robertson"``, its
variant closest to BM25Okapi. It is not the same function (:func:`check_bm25s` measures the
difference): bm25s's Robertson term weight omits the constant factor ``k1 + 1`` (a positive scale,
which ranks the same) and it clamps a negative idf (a term in more than half the titles) to 0
where rank_bm25 uses ``epsilon * mean(idf)``; its float32 default rounds further. With those
taken into account (scores times ``k1 + 1``, float64), the two agree to rounding on every pair
whose query has no negative-idf term; that is asserted. Timed: index + ``get_scores`` for every
query (full rows, as ours ``score_matrix``), and index + ``retrieve`` top 10 (bm25s's top-k path)
against ours index + exact top 10 (:func:`cti_repro.evaluation.ranking.rank_scores` on the sparse
scores, ties broken by column). rank_bm25 (build + ``get_scores``) is timed on a subset and scaled.

Times: interleaved rounds after a warm-up (common.interleaved); ratios use the *best of N* rounds
(the machine is shared: the minimum is the least disturbed run), medians are recorded too.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import common as C
from cti_repro.evaluation.evaluate import evaluate_embeddings
from cti_repro.evaluation.metrics import AP_NORMS
from cti_repro.evaluation.ranking import FIXED_POINT_BITS, _eps_factor, _fixed_point, rank, rank_scores
from cti_repro.models.baselines import SparseBM25, tokenize

K = 10


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ---- faiss --------------------------------------------------------------------------------------
def faiss_topk(queries: torch.Tensor, candidates: torch.Tensor, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """What a user writes: float32 L2-normalised copies, ``IndexFlatIP``, ``search``: ``(scores, ids)``."""
    import faiss

    q = np.array(queries.numpy(), dtype=np.float32)
    c = np.array(candidates.numpy(), dtype=np.float32)
    faiss.normalize_L2(q)
    faiss.normalize_L2(c)
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    return index.search(q, k)


def ours_eval(w: dict):
    return evaluate_embeddings(w["queries"], w["candidates"], w["query_labels"], w["candidate_labels"],
                               tie_key=w["tie_key"], ap_norms=AP_NORMS)


def ours_topk(w: dict, k: int = K):
    return rank(w["queries"], w["candidates"], k, tie_key=w["tie_key"])


def float32_tolerance(dim: int) -> float:
    """How far apart two cosines can be and still be ordered either way by float32 scores: twice the
    float32 error bound of a ``dim``-term dot product of unit vectors (also covering faiss's float32
    normalisation), plus twice our fixed-point rounding (``sqrt(dim) * 2**-26`` per score)."""
    return 2 * _eps_factor(dim) + 2 * math.sqrt(dim) * 2.0**-FIXED_POINT_BITS


def check_faiss(w: dict, ours_idx: torch.Tensor, faiss_ids: np.ndarray) -> dict:
    """Assert that faiss's top k is ours up to float32's resolution; count the rows that differ.

    A row may differ only where faiss cannot tell candidates apart: at every position the exact
    (fixed-point) cosine of faiss's pick must be within :func:`float32_tolerance` of ours.

    Raises:
        AssertionError: a row differs by more than float32 can explain (or shapes differ).
    """
    ours = ours_idx.numpy()
    assert faiss_ids.shape == ours.shape, (faiss_ids.shape, ours.shape)
    differ = np.flatnonzero((faiss_ids != ours).any(1))
    gap = 0.0
    if len(differ):
        q = _fixed_point(w["queries"][torch.from_numpy(differ)], True)
        c = _fixed_point(w["candidates"], True)
        unit = 2.0 ** (-2 * FIXED_POINT_BITS)

        def exact(ids: np.ndarray) -> np.ndarray:
            cols = torch.from_numpy(np.maximum(ids, 0))
            return ((q[:, None, :] * c[cols]).sum(-1) * unit).numpy()

        assert (faiss_ids[differ] >= 0).all(), "faiss returned fewer than k results"
        gap = float(np.abs(exact(faiss_ids[differ]) - exact(ours[differ])).max())
        tol = float32_tolerance(w["queries"].shape[1])
        assert gap <= tol, f"faiss and ours differ beyond float32's resolution: {gap:.3g} > {tol:.3g}"
    return {"rows": int(len(ours)), "rows_identical": int(len(ours) - len(differ)),
            "rows_float32_near_ties": int(len(differ)), "max_exact_gap_in_those_rows": gap,
            "tolerance": float32_tolerance(w["queries"].shape[1])}


def bench_faiss_scale(label: str, n_q: int, n_c: int, repeats: int) -> dict:
    import faiss

    faiss.omp_set_num_threads(torch.get_num_threads())  # the same cores as ours
    w = C.eval_workload(n_q, n_c)
    idx, _ = ours_eval(w)
    top, _ = ours_topk(w)
    assert torch.equal(top, idx[:, :K]), "rank() and evaluate_embeddings() disagree"
    _, ids = faiss_topk(w["queries"], w["candidates"])
    checks = check_faiss(w, idx, ids)
    q32 = torch.nn.functional.normalize(w["queries"], dim=1).numpy()
    c32t = np.ascontiguousarray(torch.nn.functional.normalize(w["candidates"], dim=1).numpy().T)
    out = np.empty((min(1024, n_q), n_c), dtype=np.float32)

    def gemm() -> None:
        for a in range(0, n_q, len(out)):
            b = min(a + len(out), n_q)
            np.matmul(q32[a:b], c32t, out=out[: b - a])

    contenders = {
        "faiss IndexFlatIP": lambda: faiss_topk(w["queries"], w["candidates"]),
        "ours (top-10 + 6 metrics)": lambda: ours_eval(w),
        "ours (top-10 only)": lambda: ours_topk(w),
        "float32 GEMM (numpy, as ours)": lambda: gemm(),
    }
    times = C.interleaved(contenders, repeats)
    best = {name: t["min_s"] for name, t in times.items()}
    return {"label": label, "workload": w["stats"], "checks": checks, "repeats": repeats, "times": times,
            "best_s": best,
            "ratio_best": {"faiss / ours (top-10 + 6 metrics)": best["faiss IndexFlatIP"] / best["ours (top-10 + 6 metrics)"],
                           "faiss / ours (top-10 only)": best["faiss IndexFlatIP"] / best["ours (top-10 only)"],
                           "GEMM share of ours (top-10 + 6 metrics)":
                               best["float32 GEMM (numpy, as ours)"] / best["ours (top-10 + 6 metrics)"]}}


# ---- bm25s --------------------------------------------------------------------------------------
def bm25s_index(corpus: list[list[str]], dtype: str = "float32"):
    import bm25s

    r = bm25s.BM25(method="robertson", dtype=dtype)
    r.index(corpus, show_progress=False)
    return r


def bm25s_scores(corpus, queries, dtype: str = "float32") -> np.ndarray:
    r = bm25s_index(corpus, dtype)
    return np.stack([r.get_scores(q) for q in queries])


def bm25s_retrieve(corpus, queries, k: int = K):
    return bm25s_index(corpus).retrieve(queries, k=k, show_progress=False, n_threads=0)


def ours_bm25_topk(corpus, queries, k: int = K):
    return rank_scores(SparseBM25(corpus).score_sparse(queries), k)


def check_bm25s(corpus: list[list[str]], queries: list[list[str]], k1: float = 1.5) -> dict:
    """Measure how far bm25s's Robertson scores (times ``k1 + 1``, float64) are from BM25Okapi's.

    Asserts agreement to 1e-12 (relative) on the queries without a negative-idf term, and that
    bm25s's ``retrieve`` returns, per query, the same top-k *scores* as our exact top k; its order
    among tied documents is its own, so ids are compared (and reported) only at positions whose
    score is apart from its neighbours'.
    """
    ours = SparseBM25(corpus, k1=k1)
    want = ours.score_matrix(queries)
    got = bm25s_scores(corpus, queries, "float64") * (k1 + 1)
    got32 = bm25s_scores(corpus, queries, "float32") * (k1 + 1)
    n = len(corpus)
    df: dict[str, int] = {}
    for doc in corpus:
        for t in set(doc):
            df[t] = df.get(t, 0) + 1
    neg = np.array([any(df.get(t, 0) > n / 2 for t in q) for q in queries])  # idf < 0 in BM25Okapi
    scale = np.maximum(np.abs(want), 1e-300)
    rel = np.abs(got - want) / scale
    clean = rel[~neg]
    assert clean.size == 0 or float(clean.max()) <= 1e-12, f"bm25s differs from BM25Okapi: {clean.max():.3g}"
    k = min(K, n - 1)
    docs, sc = bm25s_retrieve(corpus, queries, k)
    top_idx, top_val = (t.numpy() for t in ours_bm25_topk(corpus, queries, k + 1))  # k + 1: is the k-th tied?
    bm_sorted = np.sort(np.asarray(sc, dtype=np.float64) * (k1 + 1), axis=1)[:, ::-1]
    ok_rows = ~neg
    top_gap = np.abs(bm_sorted - top_val[:, :k])[ok_rows]
    assert top_gap.size == 0 or float((top_gap / np.maximum(top_val[ok_rows, :k], 1e-300)).max()) <= 1e-5, \
        "bm25s retrieve's top-k scores differ from ours"
    # A position's id is determined when its score is apart (beyond float32) from both neighbours'.
    apart = np.abs(np.diff(top_val, axis=1)) > 1e-5 * np.maximum(np.abs(top_val[:, 1:]), 1e-300)
    determined = apart[:, :k] & np.concatenate([np.ones((len(top_val), 1), bool), apart[:, : k - 1]], 1) & ok_rows[:, None]
    same_ids = bool((np.asarray(docs)[determined] == top_idx[:, :k][determined]).all())
    return {"queries": len(queries), "queries_with_negative_idf_term": int(neg.sum()),
            "max_rel_diff_float64_clean_queries": float(clean.max()) if clean.size else 0.0,
            "max_rel_diff_float64_all": float(rel.max()) if rel.size else 0.0,
            "max_abs_diff_float32_default": float(np.abs(got32 - want).max()) if want.size else 0.0,
            "retrieve_topk_scores_equal_within_float32": True,
            "retrieve_ids_equal_where_scores_distinct": same_ids, "positions_with_distinct_scores": int(determined.sum())}


def bench_bm25s_scale(label: str, n_docs: int, n_queries: int, ref_queries: int, repeats: int) -> dict:
    from rank_bm25 import BM25Okapi

    titles, qtexts = C.titles_and_queries(n_docs, n_queries)
    corpus, queries = [tokenize(t) for t in titles], [tokenize(q) for q in qtexts]
    keep = [i for i, q in enumerate(queries) if q]  # bm25s refuses an empty query
    queries = [queries[i] for i in keep]
    checks = check_bm25s(corpus, queries[: min(len(queries), 2000)])
    sub = queries[: min(ref_queries, len(queries))]

    def rank_bm25_subset():
        r = BM25Okapi(corpus)
        return [r.get_scores(q) for q in sub]

    times = C.interleaved({
        "ours dense (score_matrix)": lambda: SparseBM25(corpus).score_matrix(queries),
        "bm25s index + get_scores": lambda: bm25s_scores(corpus, queries),
        "ours index + exact top-10": lambda: ours_bm25_topk(corpus, queries),
        "bm25s index + retrieve top-10": lambda: bm25s_retrieve(corpus, queries),
        "rank_bm25 (subset)": rank_bm25_subset,
    }, repeats, warmup={"ours dense (score_matrix)", "bm25s index + get_scores", "ours index + exact top-10",
                        "bm25s index + retrieve top-10"})
    best = {name: t["min_s"] for name, t in times.items()}
    best["rank_bm25 (all queries, scaled)"] = best.pop("rank_bm25 (subset)") * len(queries) / len(sub)
    return {"label": label, "docs": n_docs, "queries": len(queries), "rank_bm25_queries": len(sub),
            "checks": checks, "repeats": repeats, "times": times, "best_s": best,
            "ratio_best": {
                "bm25s get_scores / ours dense": best["bm25s index + get_scores"] / best["ours dense (score_matrix)"],
                "bm25s retrieve / ours top-10": best["bm25s index + retrieve top-10"] / best["ours index + exact top-10"],
                "rank_bm25 / ours dense": best["rank_bm25 (all queries, scaled)"] / best["ours dense (score_matrix)"],
            }}


# ---- report -------------------------------------------------------------------------------------
def print_result(r: dict) -> None:
    print(f"\n== anchor: {r['label']} (best of {r['repeats']}) ==")
    C.print_table([[name, C.fmt_s(t), C.fmt_s(r["times"].get(name, {}).get("median_s"))]
                   for name, t in r["best_s"].items()], ["contender", "best", "median"])
    for name, x in r["ratio_best"].items():
        print(f"   {name}: {x:.2f}x")
    print(f"   checks: {r['checks']}")


def run(quick: bool = True) -> dict:
    p = C.PAPER
    out = {"machine": C.machine(), "mode": "quick" if quick else "full", "faiss": [], "bm25s": [], "skipped": []}
    if have("faiss"):
        for label, n_c, reps in (("paper scale", p["candidates"], 5 if quick else 9),
                                 ("all products", p["products"], 3 if quick else 5)):
            r = bench_faiss_scale(label, p["queries"], n_c, reps)
            print_result(r)
            out["faiss"].append(r)
    else:
        out["skipped"].append("faiss (pip install -e '.[bench]')")
    if have("bm25s"):
        r = bench_bm25s_scale("BM25, paper scale", p["candidates"], p["queries"], 300 if quick else 2000,
                              5 if quick else 9)
        print_result(r)
        out["bm25s"].append(r)
    else:
        out["skipped"].append("bm25s (pip install -e '.[bench]')")
    for s in out["skipped"]:
        print(f"   anchor skipped, not installed: {s}")
    out["machine_end"] = C.machine()
    C.write_json("anchors", out)
    return out


if __name__ == "__main__":
    C.cli_main(run, __doc__)
