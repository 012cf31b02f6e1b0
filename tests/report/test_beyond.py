"""Report helpers of the Beyond-the-paper chapter on hand-made records."""

import math

import numpy as np
import pandas as pd
import pytest

from cti_repro.report import beyond


def _rec(model, setting, seed, per_query, queries, beyond_opts=None):
    return {"status": "ok", "model": model, "setting": setting, "seed": seed, "queries": queries,
            "per_query": per_query, "means": {m: float(np.mean(v)) for m, v in per_query.items()},
            "beyond_the_paper": beyond_opts or {}}


def test_extension_differences_pair_by_query_and_seed():
    base = [_rec("CLIP-ITA", "all", 0, {"P@10": [10.0, 20.0, 30.0]}, ["a", "b", "c"]),
            _rec("CLIP-ITA", "all", 1, {"P@10": [90.0, 90.0, 90.0]}, ["a", "b", "c"])]
    ext = {"x": [_rec("CLIP-ITA", "all", 0, {"P@10": [30.0, 20.0, 20.0, 99.0]}, ["c", "b", "a", "new"],
                      {"loss.kind": "tree_soft"})],
           "d": [_rec("CLIP-ITA", "all", 0, {"P@10": [0.0]}, ["a"], {"split.disjoint_categories": 0.2})]}
    d = beyond.extension_differences(base, ext, metrics=("P@10",))
    assert d["extension"].tolist() == ["x"]  # the disjoint split is not paired
    r = d.iloc[0]
    # seed 0 only; queries a, b, c: diffs (20-10, 20-20, 30-30) -> mean 10/3
    assert r["queries"] == 3 and r["diff"] == pytest.approx(10 / 3) and r["base"] == pytest.approx(20.0)
    assert r["seeds"] == 1 and r["p_holm"] == pytest.approx(r["p"]) and "one paired seed" in r["note"]
    summary = beyond.difference_summary(d)
    # the row labels are columns: the book's tables hide the index, and a row must name its extension
    assert summary.columns[:2].tolist() == ["extension", "setting"]
    assert summary.set_index(["extension", "setting"]).loc[("x", "all"), "P@10"].startswith("+3.33 [")
    from cti_repro.report import styled
    html = styled(summary).to_html()
    assert ">x<" in html and ">all<" in html  # what the page shows names the extension and the setting


def test_graded_table_means_over_seeds():
    recs = [_rec("BM25", "all", 0, {"P@10": [10.0], "nDCG@10": [50.0], "TreeDist@10": [1.0]}, ["a"]),
            _rec("BM25", "all", 1, {"P@10": [30.0], "nDCG@10": [70.0], "TreeDist@10": [2.0]}, ["a"]),
            _rec("MPNet", "all", 0, {"P@10": [1.0]}, ["a"])]  # an old record without graded metrics
    g = beyond.graded_table(recs)
    assert g["model"].tolist() == ["BM25"]
    assert g.loc[0, "nDCG@10"] == 60.0 and g.loc[0, "TreeDist@10"] == 1.5 and g.loc[0, "n"] == 2
    assert g.loc[0, "nDCG@10 sd"] == pytest.approx(np.std([50, 70], ddof=1))


def test_tree_effects_pair_tree_soft_with_its_same_label_control():
    q = ["a", "b", "c"]
    ext = {"tree_soft": [_rec("CLIP-ITA", "all", 0, {"P@10": [30.0, 20.0, 10.0]}, q, {"loss.kind": "tree_soft"})],
           "same_label": [_rec("CLIP-ITA", "all", 0, {"P@10": [20.0, 20.0, 20.0]}, q,
                               {"loss.kind": "tree_soft", "loss.tree_decay": 0.0})],
           "attention": [_rec("CLIP-ITA", "all", 0, {"P@10": [0.0, 0.0, 0.0]}, q, {"model.attribute_pool": "attention"})]}
    d = beyond.tree_effects(ext, metrics=("P@10",))
    assert d["extension"].tolist() == ["tree_soft - same_label"]
    r = d.iloc[0]
    assert (r["base"], r["extension value"], r["diff"]) == (20.0, 20.0, 0.0)  # against the control, not CLIP-ITA
    assert beyond.tree_effects({"tree_soft": ext["tree_soft"]}).empty  # no control run: nothing to claim


def test_extension_differences_one_row_over_the_seeds_with_holm():
    """Three seeds make one row whose test holds the seed noise; Holm runs over the page's family."""
    q = [f"q{i}" for i in range(50)]
    rng = np.random.default_rng(0)
    base = [_rec("CLIP-ITA", s_, seed, {"P@10": rng.uniform(0, 100, 50), "P@1": rng.uniform(0, 100, 50)}, q)
            for s_ in ("all", "most_specific") for seed in range(3)]
    # the extension shifts each seed by -2, +1, +4 points: a mean +1 that seed noise cannot tell from 0
    ext = {"x": [_rec("CLIP-ITA", b["setting"], b["seed"],
                      {m: np.asarray(v) + 3 * b["seed"] - 2 for m, v in b["per_query"].items()}, q, {"loss.kind": "tree_soft"})
                 for b in base]}
    d = beyond.extension_differences(base, ext, metrics=("P@1", "P@10"))
    assert len(d) == 4 and (d.seeds == 3).all() and (d.queries == 50).all()
    assert d["diff"].tolist() == pytest.approx([1.0] * 4)
    # a per-query test alone would call a constant +1 shift certain; the seeds say otherwise
    assert (d.low < 0).all() and (d.p > 0.05).all() and not d.significant.any()
    from cti_repro.report.stats import holm
    assert d.p_holm.tolist() == pytest.approx(holm(d.p.tolist()).tolist())


def test_holm_runs_over_every_table_of_the_page():
    """The extensions and the tree's own effect are one family on the beyond page."""
    a = pd.DataFrame({"p": [0.01, 0.04], "p_holm": [0.02, 0.04], "significant": [True, True]})
    b = pd.DataFrame({"p": [0.03], "p_holm": [0.03], "significant": [True]})
    a2, b2 = beyond.holm_over_page(a, b)
    from cti_repro.report.stats import holm
    assert [*a2.p_holm, *b2.p_holm] == pytest.approx(holm([0.01, 0.04, 0.03]).tolist())
    assert not b2.significant.iloc[0] and not a2.significant.iloc[1]
