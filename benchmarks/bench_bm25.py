"""BM25 over product titles: ours (:class:`cti_repro.models.baselines.SparseBM25`) vs ``rank_bm25.BM25Okapi``.

Corpus: synthetic titles of the test candidates; queries: category names (see
:func:`common.titles_and_queries`). Both sides get the same tokens (:func:`cti_repro.models.baselines.tokenize`).

* ``ours``: build the index + score all queries. ``dense`` returns the full [Q, N] float64 matrix
  (what :func:`cti_repro.models.baselines.bm25_scores` returns; at 10x it is built in chunks of 4,096
  queries, 17 GB would not fit, and in quick mode only the first chunk is timed and scaled);
  ``sparse`` returns the scores as a sparse matrix (most query-title pairs share no term).
* ``rank_bm25``: build + ``get_scores`` for each query. It is slow, so it is timed on a subset of the
  queries and scaled linearly to all of them (EXTRAPOLATED, marked). Its index build is timed in full.

Scores are asserted *bit-identical* (``np.array_equal``) on the timed subset before timing.
"""

from __future__ import annotations


import numpy as np

import common as C
from cti_repro.models.baselines import SparseBM25, tokenize

CHUNK = 4096


def ours_dense(corpus, queries, max_queries: int | None = None) -> None:
    bm = SparseBM25(corpus)
    for a in range(0, min(len(queries), max_queries or len(queries)), CHUNK):
        bm.score_matrix(queries[a : a + CHUNK])


def ours_sparse(corpus, queries):
    return SparseBM25(corpus).score_sparse(queries)


def bench_scale(label: str, n_docs: int, n_queries: int, ref_queries: int, repeats: int,
                dense_queries: int | None = None) -> dict:
    from rank_bm25 import BM25Okapi

    titles, qtexts = C.titles_and_queries(n_docs, n_queries)
    t_tok, (corpus, queries) = C.timed(lambda: ([tokenize(t) for t in titles], [tokenize(q) for q in qtexts]))
    ref_q = min(ref_queries, n_queries)
    sub = queries[:ref_q]
    ref = BM25Okapi(corpus)
    want = np.stack([ref.get_scores(q) for q in sub])
    got = SparseBM25(corpus).score_matrix(sub)
    assert np.array_equal(want, got), f"scores differ, max {np.abs(want - got).max()}"

    def rank_bm25_subset():
        r = BM25Okapi(corpus)
        return [r.get_scores(q) for q in sub]

    t_build = C.interleaved({"build": lambda: BM25Okapi(corpus)}, repeats)["build"]["median_s"]
    dense_q = min(n_queries, dense_queries or n_queries)
    times = C.interleaved({
        "ours dense": lambda: ours_dense(corpus, queries, dense_q),
        "ours sparse": lambda: ours_sparse(corpus, queries),
        "rank_bm25 (subset)": rank_bm25_subset,
    }, repeats, warmup={"ours dense", "ours sparse"})
    scale = n_queries / ref_q
    ref_all = t_build + (times["rank_bm25 (subset)"]["median_s"] - t_build) * scale
    est = {"ours dense": times["ours dense"]["median_s"] * n_queries / dense_q,
           "ours sparse": times["ours sparse"]["median_s"], "rank_bm25": ref_all}
    return {
        "label": label, "docs": n_docs, "queries": n_queries, "ref_queries": ref_q, "extrapolation_x": scale,
        "dense_queries": dense_q,
        "tokens_per_title": float(np.mean([len(c) for c in corpus])),
        "tokens_per_query": float(np.mean([len(q) for q in queries])), "tokenize_s": t_tok,
        "scores_bit_identical": True, "times_measured": times, "rank_bm25_build_s": t_build,
        "estimated_all_queries_s": est,
        "ratio_dense": ref_all / est["ours dense"], "ratio_sparse": ref_all / est["ours sparse"],
    }


def print_scale(r: dict) -> None:
    print(f"\n== BM25, {r['label']}: {r['queries']} queries x {r['docs']} titles "
          f"({r['tokens_per_query']:.1f} / {r['tokens_per_title']:.1f} tokens) ==")
    if r["ref_queries"] < r["queries"]:
        print(f"   rank_bm25 timed on {r['ref_queries']} queries, scaled x{r['extrapolation_x']:.1f} (EXTRAPOLATED)")
    if r["dense_queries"] < r["queries"]:
        print(f"   ours dense timed on the first {r['dense_queries']} queries, scaled linearly (EXTRAPOLATED)")
    C.print_table([[k, C.fmt_s(v)] for k, v in r["estimated_all_queries_s"].items()], ["contender", "median time"])
    print(f"   rank_bm25 / ours: {r['ratio_dense']:.0f}x (dense), {r['ratio_sparse']:.0f}x (sparse); scores bit-identical")


def run(quick: bool = True) -> dict:
    p = C.PAPER
    out = {"machine": C.machine(), "mode": "quick" if quick else "full", "scales": []}
    for label, k, ref_q, reps, dense_q in (("paper scale", 1, 500 if quick else p["queries"], 3 if quick else 5, None),
                                           ("10x", 10, 100 if quick else 1000, 1 if quick else 3,
                                            CHUNK if quick else None)):
        r = bench_scale(label, k * p["candidates"], k * p["queries"], ref_q, reps, dense_q)
        print_scale(r)
        out["scales"].append(r)
    out["machine_end"] = C.machine()
    C.write_json("bm25", out)
    return out


if __name__ == "__main__":
    C.cli_main(run, __doc__)
