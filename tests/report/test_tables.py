"""cti_repro.report: tables, verdicts, rankings, tests, provenance and figures on fabricated records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image
from scipy import stats

from cti_repro import report
from cti_repro.data.catalogue import Catalogue, Product
from cti_repro.data.pairs import build_setting
from cti_repro.results import write_result
from cti_repro.study import METRICS

QUERIES = ["Automotive", "Books", "Electronics", "Home & Kitchen", "Toys & Games"]


def make_record(setting: str, model: str, seed: int, per_query: dict[str, list[float]] | None = None,
                queries: list[str] | None = None, status: str = "ok", demonstration: bool = False,
                pretrained: bool = True, **extra) -> dict:
    """A result record as runner.run_row writes it, with the given per-query scores.

    Metrics missing from ``per_query`` get a constant per-query score of 10.
    """
    if status != "ok":
        return {"status": status, "setting": setting, "model": model, "seed": seed, "error": "boom",
                "finished_at": "2024-01-01T00:00:00+0000", **extra}
    queries = queries or QUERIES
    pq = {m: list(map(float, (per_query or {}).get(m, [10.0] * len(queries)))) for m in METRICS}
    means = {m: float(np.mean(v)) for m, v in pq.items()}
    seen = np.array([i % 2 == 0 for i in range(len(queries))])

    def sub(mask):
        return {m: float(np.mean(np.asarray(v)[mask])) if mask.any() else math.nan for m, v in pq.items()}

    rec = {
        "status": "ok", "setting": setting, "model": model, "seed": seed, "profile": "test",
        "config": {"split": {"seed": 0, "all_draw_seed": 0, "train": 0.8, "val": 0.1, "test": 0.1},
                   "data": {"xmarket": {"market": "us"}}},
        "config_hash": "cfg", "data_fingerprint": "fp",
        "data": {"source": "synthetic" if demonstration else "xmarket", "products": 1000, "test_queries": len(queries)},
        "demonstration": demonstration,
        "encoders": {"image": {"name": "ViT-B-32", "weights": "openai" if pretrained else "random(seed=0)",
                               "pretrained": pretrained},
                     "text": {"name": "all-mpnet-base-v2", "weights": "hub", "pretrained": True}},
        "queries": list(queries), "seen": seen.tolist(), "per_query": pq, "means": means,
        "means_by_ap_norm": {"hits": means, "min_k_R": {**means, "MAP@5": means["MAP@5"] - 1},
                             "R": {**means, "MAP@5": means["MAP@5"] - 2}},
        "subsets": {"seen": sub(seen), "unseen": sub(~seen), "n_seen": int(seen.sum()), "n_unseen": int((~seen).sum())},
        "error_analysis": {"same_tree": 2 + seed, "different_tree": 3, "same_tree_depth_diff": {"-1": 1 + seed, "1": 1}},
        "top10": {}, "training": None, "device": {"device": "cuda", "gpu": "NVIDIA H100", "cpu_count": 16},
        "git_commit": "abc123", "finished_at": f"2024-01-0{seed + 1}T00:00:00+0000",
    }
    rec.update(extra)
    return rec


def constant(value: float, n: int = len(QUERIES)) -> list[float]:
    return [value] * n


def row(t1: pd.DataFrame, setting: str, model: str, metric: str) -> pd.Series:
    r = t1[(t1.setting == setting) & (t1.model == model) & (t1.metric == metric)]
    assert len(r) == 1
    return r.iloc[0]


# ---- Table 1 ---------------------------------------------------------------------------------
def test_table1_mean_sd_diff_verdict():
    recs = [make_record("most_general", "CLIP-ITA", s, {"P@1": constant(v), "MAP@5": constant(m)})
            for s, v, m in ((0, 34.0, 20.0), (1, 36.0, 22.0))]
    t1 = report.table1(recs)
    assert len(t1) == 18 * 6
    r = row(t1, "most_general", "CLIP-ITA", "P@1")
    assert r.published == pytest.approx(35.71)
    assert r["mean"] == pytest.approx(35.0)
    assert r.sd == pytest.approx(math.sqrt(2))
    assert r.n == 2 and r.status == "ok" and r.n_queries == 5 and r.points_per_query == pytest.approx(20.0)
    assert r["diff"] == pytest.approx(-0.71)
    # constant per query, so only the seeds vary: the replicates are 34, 35 or 36
    assert (r.ci_lo, r.ci_hi) == (pytest.approx(34.0), pytest.approx(36.0))
    # the consistency range: only the seed term, var 2 x (1 + 1/2) = 3, t quantile with 1 df
    half = stats.t.ppf(0.975, 1) * math.sqrt(3)
    assert (r.range_lo, r.range_hi) == (pytest.approx(35 - half), pytest.approx(35 + half))
    assert r.verdict == "inconclusive" and r.reproduces  # inside a range wider than 20 points
    r = row(t1, "most_general", "CLIP-ITA", "MAP@5")
    assert r["mean"] == pytest.approx(21.0) and r["diff"] == pytest.approx(21.0 - 35.51)
    assert r.verdict == "inconclusive" and r.ci_hi == pytest.approx(22.0)


def test_interval_follows_the_queries_and_demonstration_is_no_pass():
    # one seed, P@1 of 5 queries = 0/0/0/100/100: mean 40, one query is 20 points; the bootstrap
    # mean is 20 x Binomial(5, 0.4): P(<= 0) = 0.078 > 2.5%, P(>= 5) = 0.010 < 2.5%: interval [0, 80]
    recs = [make_record("all", "CLIP-ITA", 0, {"P@1": [0, 0, 0, 100, 100]})]
    r = row(report.table1(recs), "all", "CLIP-ITA", "P@1")
    assert r["mean"] == pytest.approx(40.0) and r.points_per_query == pytest.approx(20.0)
    assert r.ci_lo == pytest.approx(0.0) and r.ci_hi == pytest.approx(80.0)
    assert r.verdict == "inconclusive"  # published 9.90 lies inside a range of +-96 points
    # 0/100/100/100/100: Binomial(5, 0.8): P(<= 1) = 0.007, P(<= 2) = 0.058: interval [40, 100]
    recs = [make_record("all", "CLIP-ITA", 0, {"P@1": [0, 100, 100, 100, 100]})]
    r = row(report.table1(recs), "all", "CLIP-ITA", "P@1")
    assert (r.ci_lo, r.ci_hi) == (pytest.approx(40.0), pytest.approx(100.0))
    # five queries and the paper's own sampling error: 9.90 is still inside the range
    assert r.range_lo < 9.90 and r.verdict == "inconclusive"
    demo = [make_record("all", "CLIP-ITA", 0, {"P@1": [0, 100, 100, 100, 100]}, demonstration=True)]
    t = report.table1(demo)
    d = row(t, "all", "CLIP-ITA", "P@1")
    assert d.verdict == "demonstration" and d.position == "inconclusive" and not d.reproduces
    html = report.table1_block(t, "all").to_html()
    assert report.styles.VERDICT_COLOURS["demonstration"] in html
    assert report.styles.VERDICT_COLOURS["consistent"] not in html


def test_verdict_rule():
    assert report.verdict(10.0, 9.0, 11.0) == "consistent"
    assert report.verdict(10.0, 10.0, 11.0) == "consistent"  # on the edge: inside
    assert report.verdict(10.0, 10.5, 11.0) == "higher"
    assert report.verdict(10.0, 8.0, 9.9) == "lower"
    assert report.verdict(10.0, 8.0, 9.9, demonstration=True) == "demonstration"
    assert report.verdict(math.nan, 1.0, 2.0) == "n/a"
    assert report.verdict(10.0, 0.0, 21.0) == "inconclusive"  # wider than 20 points
    assert "consistency range" in report.VERDICT_RULE and "wider than 20 points" in report.VERDICT_RULE


def test_comparison_csv_and_per_query_parquet(tmp_path):
    recs = [make_record("all", "BM25", 0, {"P@1": [0, 100, 0, 0, 0]}),
            make_record("all", "CLIP-ITA", 0), make_record("all", "CLIP-ITA", 1)]
    csv, pq = report.write_comparison(recs, tmp_path)
    c = pd.read_csv(csv)
    assert list(c.columns) == ["setting", "model", "metric", "published", "mean", "sd", "ci_lo", "ci_hi",
                               "range_lo", "range_hi", "n_queries", "points_per_query", "reproduces", "verdict"]
    assert len(c) == 108
    bm = c[(c.setting == "all") & (c.model == "BM25") & (c.metric == "P@1")].iloc[0]
    assert (bm["mean"], bm.n_queries, bm.points_per_query) == (20.0, 5, 20.0)
    assert set(c.verdict) <= {"consistent", "inconclusive", "higher", "lower", "demonstration", "not run", "FAILED"}
    p = pd.read_parquet(pq)
    assert list(p.columns) == ["setting", "model", "seed", "query", "seen", "metric", "value"]
    assert len(p) == 3 * 6 * 5
    got = p[(p.model == "BM25") & (p.metric == "P@1")].set_index("query").value
    assert got.to_dict() == dict(zip(QUERIES, [0.0, 100.0, 0.0, 0.0, 0.0]))


def test_failed_and_missing_rows():
    recs = [make_record("all", "BM25", 0, status="failed"), make_record("all", "MPNet", 0),
            make_record("all", "MPNet", 1, status="failed")]
    t1 = report.table1(recs)
    r = row(t1, "all", "BM25", "P@1")
    assert (r.status, r.verdict, r.n, r.n_failed) == ("failed", "FAILED", 0, 1)
    assert np.isnan(r["mean"])
    r = row(t1, "all", "CLIP", "P@1")
    assert (r.status, r.verdict) == ("not run", "not run")
    r = row(t1, "all", "MPNet", "P@1")  # one ok seed, one failed: the ok one counts
    assert (r.status, r.n, r.n_failed) == ("ok", 1, 1)
    assert np.isnan(r.sd)
    wide = report.table1_wide(t1)
    assert wide.shape == (18, 2 + len(METRICS))
    cells = wide.set_index(["setting", "model"])
    assert cells.loc[("all", "BM25"), "P@1"] == "0.01 / FAILED"
    assert cells.loc[("all", "CLIP"), "P@1"] == "0.01 / not run"
    assert cells.loc[("all", "MPNet"), "P@1"] == "0.01 / 10.00"
    html = report.table1_block(t1, "all").to_html()
    assert "FAILED" in html and "not run" in html


def test_extra_models_are_listed_after_the_paper_rows():
    t1 = report.table1([make_record("all", "CLIP-ITA-L14", 0)])
    assert len(t1) == 19 * 6
    assert row(t1, "all", "CLIP-ITA-L14", "P@1").verdict == "n/a"


def test_ranking_differences_flags_a_swapped_pair():
    # paper, most general P@1: CLIP-ITA 35.71 > CLIP-IA 21.42; ours the other way round
    recs = [make_record("most_general", "CLIP-ITA", 0, {"P@1": constant(20.0), "P@5": constant(40.0)}),
            make_record("most_general", "CLIP-IA", 0, {"P@1": constant(30.0), "P@5": constant(20.0)})]
    ranks = report.ranking_differences(report.table1(recs)).set_index(["setting", "metric"])
    p1 = ranks.loc[("most_general", "P@1")]
    assert p1.differs
    assert p1.swapped == "CLIP-IA ↔ CLIP-ITA"
    assert p1.paper_order == "CLIP-ITA > CLIP-IA" and p1.our_order == "CLIP-IA > CLIP-ITA"
    assert p1.kendall_tau == pytest.approx(-1.0)
    assert not ranks.loc[("most_general", "P@5")].differs
    assert not ranks.loc[("all", "P@1")].differs  # no model with a result there


def test_ranking_ties_are_not_swaps():
    # all / P@1 published: BM25 = CLIP = MPNet = 0.01
    recs = [make_record("all", m, 0, {"P@1": constant(v)}) for m, v in (("BM25", 1.0), ("CLIP", 2.0), ("MPNet", 3.0))]
    r = report.ranking_differences(report.table1(recs)).set_index(["setting", "metric"]).loc[("all", "P@1")]
    assert not r.differs
    assert r.paper_order == "BM25 = CLIP = MPNet"


# ---- significance ----------------------------------------------------------------------------
def test_holm_matches_hand_computation():
    assert report.holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert report.holm([0.5, 0.6]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    out = report.holm([0.02, math.nan, 0.01])
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_significance_tests_the_seeds_x_queries_matrix():
    rng = np.random.default_rng(0)
    pq = {(m, s): rng.uniform(0, 100, len(QUERIES)) for m in ("CLIP-ITA", "CLIP-IA", "CLIP-I", "MPNet") for s in (0, 1)}
    recs = [make_record("most_specific", m, s, {"P@1": v}) for (m, s), v in pq.items()]
    sig = report.significance(recs, metrics=("P@1",), settings=("most_specific",))
    assert list(sig.other) == ["CLIP-IA", "CLIP-I", "MPNet"]
    target = np.stack([pq[("CLIP-ITA", 0)], pq[("CLIP-ITA", 1)]])
    ps = []
    for r in sig.itertuples():
        other = np.stack([pq[(r.other, 0)], pq[(r.other, 1)]])
        ref = report.seed_query_test(target, other)
        d_q = target.mean(0) - other.mean(0)
        se2 = d_q.var(ddof=1) / 5 + target.mean(1).var(ddof=1) / 2 + other.mean(1).var(ddof=1) / 2
        assert r.se ** 2 == pytest.approx(se2) and r.p == pytest.approx(float(ref["p"]))
        assert r.n == len(QUERIES) and r.diff == pytest.approx(d_q.mean()) and r.n_seeds == "2 / 2"
        ps.append(float(ref["p"]))
    assert sig.p_holm.tolist() == pytest.approx(report.holm(ps).tolist())
    assert sig.significant.tolist() == [p < 0.05 for p in report.holm(ps)]
    assert len(report.significance_summary(sig)) == 1


def test_holm_runs_over_the_whole_family():
    rng = np.random.default_rng(1)
    def scores(m):  # CLIP-ITA clearly ahead: small p-values, so the family size shows in the adjustment
        lo = 60 if m == "CLIP-ITA" else 0
        return rng.uniform(lo, lo + 40, len(QUERIES))

    recs = [make_record(st, m, 0, {"P@1": scores(m), "MAP@5": scores(m)})
            for st in ("all", "most_specific") for m in ("CLIP-ITA", "CLIP-IA", "CLIP-I", "MPNet")]
    sig = report.significance(recs, metrics=("P@1", "MAP@5"), settings=("all", "most_specific"))
    assert len(sig) == 12
    assert sig.p_holm.tolist() == pytest.approx(report.holm(sig.p.tolist()).tolist())  # one family of 12
    cell = report.significance(recs, metrics=("P@1", "MAP@5"), settings=("all", "most_specific"), family="cell")
    first = cell[(cell.setting == "all") & (cell.metric == "P@1")]
    assert first.p_holm.tolist() == pytest.approx(report.holm(first.p.tolist()).tolist())  # three at a time
    assert not np.allclose(sig.p_holm, cell.p_holm)
    assert ((sig.diff_lo <= sig["diff"]) & (sig["diff"] <= sig.diff_hi)).all()
    assert "[" in report.significance_summary(sig).iloc[0, 2]


def test_significance_degenerate_cases_give_nan_with_a_note():
    recs = [make_record("all", "CLIP-ITA", 0, {"P@1": [50.0]}, queries=["Books"]),
            make_record("all", "CLIP-IA", 0, {"P@1": [10.0]}, queries=["Books"]),
            make_record("most_general", "CLIP-ITA", 0, {"P@1": constant(30.0)}),
            make_record("most_general", "CLIP-IA", 0, {"P@1": constant(30.0)}),
            make_record("most_general", "CLIP-I", 0, {"P@1": constant(20.0)})]
    sig = report.significance(recs, metrics=("P@1",), settings=("all", "most_general")).set_index(["setting", "other"])
    one = sig.loc[("all", "CLIP-IA")]
    assert one.n == 1 and np.isnan(one.p) and np.isnan(one.p_holm) and "1 paired query" in one.note
    assert "not run" in sig.loc[("all", "CLIP-I")].note
    same = sig.loc[("most_general", "CLIP-IA")]
    assert np.isnan(same.p) and "identical" in same.note
    const = sig.loc[("most_general", "CLIP-I")]
    assert np.isnan(const.p) and "no variance" in const.note
    assert not sig.significant.any()


# ---- Tables 2 and 3, AP@k --------------------------------------------------------------------
def test_table3_seen_unseen_beside_the_paper():
    recs = [make_record("most_specific", "CLIP-ITA", s, {"P@1": [100, 0, 100, 0, 50 + s * 10]}) for s in (0, 1)]
    t3 = report.table3(recs).set_index(["setting", "subset", "source"])
    # seen = queries 0, 2, 4 (even positions); unseen = 1, 3
    assert t3.loc[("most_specific", "seen", "ours"), "P@1"] == pytest.approx(np.mean([(200 + 50) / 3, (200 + 60) / 3]))
    assert t3.loc[("most_specific", "unseen", "ours"), "P@1"] == pytest.approx(0.0)
    assert t3.loc[("most_specific", "seen", "ours"), "queries"] == 3
    assert t3.loc[("most_specific", "unseen", "ours"), "queries"] == 2
    assert t3.loc[("most_specific", "seen", "paper"), "P@1"] == pytest.approx(47.83)
    assert t3.loc[("most_specific", "unseen", "paper"), "R-precision"] == pytest.approx(26.45)
    assert t3.loc[("most_specific", "overall", "paper"), "P@1"] == pytest.approx(45.85)
    assert np.isnan(t3.loc[("all", "seen", "ours"), "P@1"])  # not run


def test_table2_error_counts_beside_the_paper():
    recs = [make_record("all", "CLIP-ITA", s) for s in (0, 1)]
    t2 = report.table2(recs).set_index("setting")
    assert t2.loc["all", "same tree"] == pytest.approx(2.5)       # (2 + 3) / 2
    assert t2.loc["all", "different tree"] == pytest.approx(3.0)
    assert t2.loc["all", "d=-1 %"] == pytest.approx(100 * 3 / 5)  # pooled: d=-1 1+2, d=1 1+1
    assert t2.loc["all", "d>0 %"] == pytest.approx(100 * 2 / 5)
    assert t2.loc["all", "paper same tree"] == 1655 and t2.loc["most_specific", "paper different tree"] == 1011
    assert t2.loc["total", "paper same tree"] == 1786
    assert np.isnan(t2.loc["most_general", "same tree"])


def test_ap_norm_table():
    t = report.ap_norm_table([make_record("all", "CLIP-I", 0, {"MAP@5": constant(30.0)})]).iloc[0]
    assert t["MAP@5 hits"] == pytest.approx(30.0)
    assert t["MAP@5 min(k,R)"] == pytest.approx(29.0) and t["MAP@5 R"] == pytest.approx(28.0)
    assert t["MAP@5 paper"] == pytest.approx(6.81)


# ---- provenance ------------------------------------------------------------------------------
def test_provenance_warns_for_demonstrations_only():
    demo = report.provenance_html([make_record("all", "CLIP", 0, demonstration=True, pretrained=False)])
    assert "NOT a reproduction of the paper" in demo and "<strong>" in demo
    assert "synthetic" in demo
    random_only = report.provenance_html([make_record("all", "CLIP", 0, pretrained=False)])
    assert "NOT a reproduction" in random_only
    real = report.provenance_html([make_record("all", "CLIP", s) for s in (0, 1)])
    assert "NOT a reproduction" not in real
    assert "XMarket (us market)" in real and "NVIDIA H100" in real and "abc123" in real
    p = report.provenance([make_record("all", "CLIP", s) for s in (0, 1)] + [make_record("all", "BM25", 2, status="failed")])
    assert p["seeds"] == [0, 1, 2] and p["failed"] == 1 and not p["demonstration"]
    assert "No result records" in report.provenance_html([])


def test_load_study_reads_the_results_store(tmp_path):
    for s in (0, 1):
        write_result(tmp_path / "all" / f"CLIP_seed{s}.json", make_record("all", "CLIP", s))
    recs = report.load_study(tmp_path)
    assert [r["seed"] for r in recs] == [0, 1]
    assert row(report.table1(recs), "all", "CLIP", "P@1").n == 2


def test_empty_study_renders():
    t1 = report.table1([])
    assert set(t1.verdict) == {"not run"}
    assert report.ranking_differences(t1).differs.sum() == 0
    assert isinstance(report.published_vs_reproduced_figure(t1), Figure)
    assert isinstance(report.training_curves([]), Figure)
    assert report.significance([]).p.isna().all()
    assert report.ap_norm_table([]).empty and "MAP@5 hits" in report.ap_norm_table([]).columns
    assert report.table2([]).shape[0] == 4 and len(report.table3([])) == 18


# ---- figures ---------------------------------------------------------------------------------
def _history(n: int = 4) -> dict:
    return {"history": [{"epoch": e, "train_loss": 3 - 0.3 * e, "val_loss": 3.1 - 0.2 * e, "lr": 1e-3} for e in range(1, n + 1)],
            "best_epoch": n, "best_val_loss": 3.1 - 0.2 * n}


def test_training_curves_one_axis_per_setting_and_trained_model():
    recs = [make_record(s, m, seed, training=_history()) for s in ("all", "most_specific")
            for m in ("CLIP-I", "CLIP-IA", "CLIP-ITA") for seed in (0, 1)]
    fig = report.training_curves(recs + [make_record("all", "MPNet", 0)])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6
    assert len(fig.axes[0].lines) == 2 * 3  # per seed: training, validation, best-epoch marker


def test_published_vs_reproduced_figure_one_panel_per_setting():
    recs = [make_record(s, "CLIP-ITA", seed) for s in ("all", "most_general", "most_specific") for seed in (0, 1)]
    fig = report.published_vs_reproduced_figure(report.table1(recs))
    assert isinstance(fig, Figure) and len(fig.axes) == 3


def test_gallery_marks_relevant_products(tmp_path):
    (tmp_path / "images").mkdir()
    products = []
    for i in range(20):
        root = "Books" if i % 2 == 0 else "Toys"
        pid = f"P{i:02d}"
        Image.new("RGB", (16, 16), (255, 0, 0) if root == "Books" else (0, 0, 255)).save(tmp_path / "images" / f"{pid}.png")
        products.append(Product(pid, f"title {i}", ("a",), (root, f"{root} leaf {i % 4}"), f"images/{pid}.png"))
    cat = Catalogue.from_products(products, root=tmp_path)
    top = {"Books": ["P00", "P01", "P02"], "Toys": ["P03", "P05", "P04"]}
    recs = [make_record("most_general", m, 0, top10=top) for m in ("CLIP", "CLIP-ITA")]
    fig = report.gallery(recs, cat, "most_general", queries=["Books"], k=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 3
    assert [(g["model"], g["product_id"], g["relevant"]) for g in fig.cti_gallery] == [
        ("CLIP", "P00", True), ("CLIP", "P01", False), ("CLIP", "P02", True),
        ("CLIP-ITA", "P00", True), ("CLIP-ITA", "P01", False), ("CLIP-ITA", "P02", True)]
    assert [ax.get_title() for ax in fig.axes[:3]] == ["1 ✓", "2 ✗", "3 ✓"]
    # default queries: most relevant test products first (ties alphabetical)
    data = build_setting(cat, "most_general")
    counts = pd.Series(data.labels[data.candidates]).value_counts()
    expected = sorted(counts.index, key=lambda q: (-counts[q], q))
    assert report.gallery(recs, cat, "most_general", k=2).cti_queries == expected[:3]
    empty = report.gallery(recs, cat, "most_specific")
    assert empty.cti_gallery == [] and isinstance(empty, Figure)


def test_missing_images_are_counted_and_flagged_above_one_percent():
    from cti_repro.report import row_page

    few = make_record("all", "CLIP-ITA", 0, feature_stats={"images_unreadable": 10, "images_total": 1000})
    many = make_record("all", "CLIP-I", 0, feature_stats={"images_unreadable": 11, "images_total": 1000})
    text = make_record("all", "MPNet", 0, feature_stats={"images_unreadable": 500, "images_total": 1000})
    assert row_page.missing_images_box(few) is None  # exactly 1%: not flagged
    assert "11 of 1,000" in row_page.missing_images_box(many)
    assert row_page.missing_images_box(text) is None  # MPNet does not use the images
    assert row_page.data_table(many).loc["images unreadable (zero vectors)", "count"] == "11 of 1,000 (1.1%)"
    box = report.provenance_html([few, many, text])
    assert "Images unreadable" in box and "FLAGGED for all CLIP-I" in box and "CLIP-ITA" not in box.split("FLAGGED")[1]


def test_provenance_shows_activation_and_checkpoint_hash():
    rec = make_record("all", "CLIP", 0)
    rec["encoders"]["image"].update(architecture={"name": "ViT-B-32", "activation": "QuickGELU"},
                                    checkpoint="/hub/open_clip_model.safetensors", sha256="ab" * 32)
    box = report.provenance_html([rec])
    assert "QuickGELU" in box and "open_clip_model.safetensors sha256 abababababab" in box


def test_ablation_page_helpers_without_any_variant(tmp_path):
    t = report.ablations.ablation_table(tmp_path)
    assert t.empty and list(t.columns) == report.ablations.COLUMNS
    assert report.ablations.ablation_wide(t).empty
    fig = report.ablations.ablation_figure(t)  # the "nothing has run" figure, not an error
    assert isinstance(fig, Figure) and "No ablation variant" in fig.axes[0].texts[0].get_text()
