"""Report helpers of the Beyond-the-paper chapter on hand-made records."""

import math

import numpy as np
import pytest

from cti_repro.report import beyond


def _rec(model, setting, seed, per_query, queries, beyond_opts=None):
    return {"status": "ok", "model": model, "setting": setting, "seed": seed, "queries": queries,
            "per_query": per_query, "means": {m: float(np.mean(v)) for m, v in per_query.items()},
            "beyond_the_paper": beyond_opts or {}}


def test_bootstrap_mean():
    mean, lo, hi = beyond.bootstrap_mean(np.array([1.0, 2.0, 3.0, 4.0]), n_resamples=500)
    assert mean == 2.5 and 1.0 <= lo < 2.5 < hi <= 4.0
    assert beyond.bootstrap_mean(np.array([2.0, 2.0])) == (2.0, 2.0, 2.0)
    m, lo, hi = beyond.bootstrap_mean(np.array([3.0]))
    assert m == 3.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in beyond.bootstrap_mean(np.array([])))


def test_extension_differences_pair_by_query_and_seed():
    base = [_rec("CLIP-ITA", "all", 0, {"P@10": [10.0, 20.0, 30.0]}, ["a", "b", "c"]),
            _rec("CLIP-ITA", "all", 1, {"P@10": [90.0, 90.0, 90.0]}, ["a", "b", "c"])]
    ext = {"x": [_rec("CLIP-ITA", "all", 0, {"P@10": [30.0, 20.0, 20.0, 99.0]}, ["c", "b", "a", "new"],
                      {"loss.kind": "tree_soft"})],
           "d": [_rec("CLIP-ITA", "all", 0, {"P@10": [0.0]}, ["a"], {"split.disjoint_categories": 0.2})]}
    d = beyond.extension_differences(base, ext, metrics=("P@10",), n_resamples=200)
    assert d["extension"].tolist() == ["x"]  # the disjoint split is not paired
    r = d.iloc[0]
    # seed 0 only; queries a, b, c: diffs (20-10, 20-20, 30-30) -> mean 10/3
    assert r["queries"] == 3 and r["diff"] == pytest.approx(10 / 3) and r["base"] == pytest.approx(20.0)
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
