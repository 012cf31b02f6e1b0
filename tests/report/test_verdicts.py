"""Table 1's verdict: decided by what ran, with both sampling errors, at its nominal rate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cti_repro import report
from cti_repro.report import row_page
from cti_repro.report.reproduction import encoder_roles, reproduction_gaps, reproduces
from cti_repro.report.verdicts import INCONCLUSIVE_WIDTH, consistency_range, verdict
from tests.report.test_tables import make_record, row

# 400 simulated cells: the binomial sd of a 95% rate is 1.1 points; 3 points either side
TOLERANCE = 0.03


def faithful_cells(rng: np.random.Generator, n_sim: int, n_queries: int, n_seeds: int = 3,
                   seed_sd: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Published values (one run on its own queries) and our ``[n_sim, seeds, queries]`` scores
    (another query sample), both from the same model: a faithful reproduction."""
    def runs(seeds: int) -> np.ndarray:
        query = rng.normal(30, 35, (n_sim, 1, n_queries))          # a fresh sample of test queries
        return query + rng.normal(0, seed_sd, (n_sim, seeds, 1)) + rng.normal(0, 15, (n_sim, seeds, n_queries))
    return runs(1).mean(axis=(-2, -1)), runs(n_seeds)


@pytest.mark.parametrize("n_queries", [500, 2000])
def test_a_faithful_reproduction_is_consistent_95_percent_of_the_time(n_queries):
    published, ours = faithful_cells(np.random.default_rng(11), 400, n_queries)
    _, lo, hi = consistency_range(ours)
    inside = float(((lo <= published) & (published <= hi)).mean())
    assert abs(inside - 0.95) <= TOLERANCE, f"consistent in {inside:.3f} of faithful cells ({n_queries} queries)"


def test_one_unit_of_the_last_digit_outside_the_range_is_higher_or_lower():
    rng = np.random.default_rng(1)
    queries = [f"q{i}" for i in range(400)]
    recs = [make_record("most_specific", "CLIP-ITA", s, {"P@1": rng.uniform(30, 60, 400)}, queries) for s in range(3)]
    r = row(report.table1(recs), "most_specific", "CLIP-ITA", "P@1")
    below = math.floor(r.range_lo * 100) / 100  # the published table has two decimals
    below = below if below < r.range_lo else below - 0.01
    above = math.ceil(r.range_hi * 100) / 100
    above = above if above > r.range_hi else above + 0.01
    published = pd.DataFrame([{"setting": "most_specific", "model": "CLIP-ITA", **dict.fromkeys(report.tables.METRICS, below)},
                              {"setting": "all", "model": "CLIP-ITA", **dict.fromkeys(report.tables.METRICS, above)}])
    recs += [make_record("all", "CLIP-ITA", s, {"P@1": rng.uniform(30, 60, 400)}, queries) for s in range(3)]
    t1 = report.table1(recs, published)
    ms, al = row(t1, "most_specific", "CLIP-ITA", "P@1"), row(t1, "all", "CLIP-ITA", "P@1")
    assert ms.range_lo - below <= 0.01 and ms.verdict == "higher"
    al_above = math.ceil(al.range_hi * 100) / 100
    t1 = report.table1(recs, published.assign(**{"P@1": [below, al_above if al_above > al.range_hi else al_above + 0.01]}))
    assert row(t1, "all", "CLIP-ITA", "P@1").verdict == "lower"
    assert verdict(10.0, 10.01, 12.0) == "higher" and verdict(12.01, 10.0, 12.0) == "lower"


def test_a_wide_range_is_inconclusive_not_consistent():
    # 28 queries at P@1 (0 or 100): the most-general setting at paper scale
    scores = np.tile(np.r_[np.zeros(20), np.full(8, 100.0)], (3, 1))
    _, lo, hi = consistency_range(scores)
    assert hi - lo > INCONCLUSIVE_WIDTH
    assert verdict(float(scores.mean()), float(lo), float(hi)) == "inconclusive"


def _real(setting: str = "all", model: str = "CLIP-ITA", seed: int = 0, **extra) -> dict:
    return make_record(setting, model, seed, {"P@1": np.linspace(20, 40, 5)}, **extra)


def test_random_weights_labelled_real_are_a_demonstration_everywhere(tmp_path):
    """The xmarket profile with allow_random, label false: every page says it is no reproduction."""
    rec = _real(pretrained=False, demonstration=False)
    assert reproduction_gaps(rec) == ["image encoder ViT-B-32: random weights (random(seed=0))"]
    t1 = report.table1([rec])
    r = row(t1, "all", "CLIP-ITA", "P@1")
    assert r.verdict == "demonstration" and not r.reproduces
    assert "NOT a reproduction" in report.provenance_html([rec]) and "random weights" in report.provenance_html([rec])
    assert row_page.demonstration_box(rec) is not None
    csv, _ = report.write_comparison([rec], tmp_path)
    c = pd.read_csv(csv)
    assert set(c[(c.model == "CLIP-ITA") & (c.setting == "all")].verdict) == {"demonstration"}
    assert report.book_pages.headline_md(t1, [rec]).startswith(report.book_pages.DEMO_HEADLINE)


def test_the_label_only_adds_caution_and_what_ran_decides():
    real = _real()
    assert reproduces(real) and row_page.demonstration_box(real) is None
    assert row(report.table1([real]), "all", "CLIP-ITA", "P@1").verdict != "demonstration"
    assert not reproduces({**real, "demonstration": True})  # the label can make it more cautious
    assert not reproduces({**real, "data": {**real["data"], "source": "synthetic"}})
    assert not reproduces({**real, "beyond_the_paper": {"loss.kind": "tree_soft"}})
    assert not reproduces({**real, "ranking": {"candidates": "all"}})
    assert not reproduces({**real, "ap_norm": "R"})
    no_text = {**real, "encoders": {"image": real["encoders"]["image"]}}
    assert reproduction_gaps(no_text) == ["text encoder: not recorded"]
    # BM25 uses no encoder: random image weights elsewhere in the build do not concern it
    assert encoder_roles("BM25") == [] and reproduces(_real(model="BM25", pretrained=False))
    assert encoder_roles("CLIP") == ["image"] and encoder_roles("MPNet") == ["text"]
    # a text-image study model: the encoders its record lists
    xmodal = {**real, "model": "KCCA", "encoders": {"image": real["encoders"]["image"]}}
    assert encoder_roles("KCCA") is None and reproduces(xmodal)
    assert not report.provenance([real])["demonstration"]
    assert report.provenance([real, _real(seed=1, pretrained=False)])["demonstration"]
