"""Significance over seeds and queries: the false-positive rate holds at its nominal level.

A statistical test with a fixed generator: two models equal in expectation, each trained with 3
seeds whose means spread by 1.5 points (the embedded CLIP-ITA spread is 1.1-2.2), per-query
differences with an sd of about 36 points (P@1-like). Testing the seed-averaged queries alone
rejected in ~13% (500 queries) and ~29% (2,000 queries) of such tests at p < 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest

from cti_repro import report
from cti_repro.report.stats import bootstrap_ci, seed_query_test

ALPHA = 0.05
# 400 tests: the binomial sd of a 5% rate is 1.1 points; 2.5 points either side is > 2 sd
TOLERANCE = 0.025


def equal_models(rng: np.random.Generator, n_sim: int, n_queries: int, n_seeds: int = 3,
                 seed_sd: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Two ``[n_sim, seeds, queries]`` score arrays equal in expectation (shared query difficulty)."""
    difficulty = rng.normal(40, 25, (n_sim, 1, n_queries))

    def model() -> np.ndarray:
        return (difficulty + rng.normal(0, 24, (n_sim, 1, n_queries))          # model x query
                + rng.normal(0, seed_sd, (n_sim, n_seeds, 1))                 # training seed
                + rng.normal(0, 15, (n_sim, n_seeds, n_queries)))             # seed x query
    return model(), model()


@pytest.mark.parametrize("n_queries", [500, 2000])
def test_false_positive_rate_is_nominal_with_seed_noise(n_queries):
    a, b = equal_models(np.random.default_rng(2026), 400, n_queries)
    rate = float((seed_query_test(a, b)["p"] < ALPHA).mean())
    assert abs(rate - ALPHA) <= TOLERANCE, f"false-positive rate {rate:.3f} at {n_queries} queries"


def test_significance_on_records_holds_its_level():
    """The page's own function, 150 simulated pairs as 150 'settings' of one call (2,000 queries)."""
    n_sim, n_q = 150, 2000
    a, b = equal_models(np.random.default_rng(7), n_sim, n_q)
    queries = [f"q{i}" for i in range(n_q)]
    recs = [{"status": "ok", "setting": f"sim{i}", "model": m, "seed": s, "queries": queries,
             "per_query": {"P@1": x[i, s].tolist()}}
            for i in range(n_sim) for m, x in (("A", a), ("B", b)) for s in range(3)]
    sig = report.significance(recs, target="A", others=("B",), metrics=("P@1",),
                              settings=[f"sim{i}" for i in range(n_sim)], family="cell")
    rate = float((sig.p < ALPHA).mean())
    assert abs(rate - ALPHA) <= 0.04, f"false-positive rate {rate:.3f} (150 tests: sd 1.8 points)"
    assert (sig.n == n_q).all() and (sig.n_seeds == "3 / 3").all()


def test_a_real_difference_is_found():
    a, b = equal_models(np.random.default_rng(3), 200, 2000)
    assert (seed_query_test(a + 8, b)["p"] < ALPHA).mean() > 0.9  # 8 points against a ~1.5-point se, ~5 df


def test_paired_seeds_use_the_difference_matrix():
    d = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]])
    r = seed_query_test(d)
    # query term var([1.5, 2.5, 3.5]) / 3, seed term var([2, 3]) / 2
    assert float(r["se"]) ** 2 == pytest.approx(1 / 3 + 0.5 / 2)
    assert float(r["lo"]) < float(r["diff"]) == 2.5 < float(r["hi"])
    exact = seed_query_test(np.ones((3, 5)))  # no variance: no test, the interval is the point
    assert np.isnan(exact["p"]) and float(exact["lo"]) == float(exact["hi"]) == 1.0


def test_bootstrap_shares_one_query_draw_across_seeds():
    """Three identical seed rows carry no seed noise: exactly the interval of one row."""
    row = np.random.default_rng(0).uniform(0, 100, 40)
    assert bootstrap_ci(np.tile(row, (3, 1))) == pytest.approx(bootstrap_ci(row), abs=1e-9)


def test_ablation_stars_follow_holm_over_the_whole_page(tmp_path):
    """A variant's star needs its Holm-adjusted p over every (variant, setting, model, metric)."""
    from cti_repro.report.ablations import ablation_table, ablation_wide
    from cti_repro.results import result_path, write_result
    from tests.report.test_tables import make_record

    rng = np.random.default_rng(5)
    queries = [f"q{i}" for i in range(60)]
    base = {s: rng.uniform(0, 100, 60) for s in range(3)}
    for s, v in base.items():
        write_result(result_path(tmp_path, "all", "CLIP-I", s), make_record("all", "CLIP-I", s, {"P@1": v}, queries))
    shifts = {"big": 20.0, "small": 3.0}
    for name, shift in shifts.items():
        for s, v in base.items():
            # the same noise in both variants: query noise and a seed offset of -1.5, 0, +1.5 points
            noise = np.random.default_rng(100 + s).normal(0, 4, 60) + 1.5 * (s - 1)
            rec = make_record("all", "CLIP-I", s, {"P@1": v + shift + noise, "P@5": 10 + shift + noise}, queries)
            write_result(result_path(tmp_path / "ablations" / name, "all", "CLIP-I", s), rec)
    t = ablation_table(tmp_path)
    tested = t[np.isfinite(t.p)]
    assert len(tested) == 4  # P@1 and P@5 of both variants; the constant metrics have no variance
    assert tested.p_holm.tolist() == pytest.approx(report.holm(tested.p.tolist()).tolist())
    assert (t.significant == (t.p_holm < 0.05)).all()
    small = t[(t.variant == "small") & (t.metric == "P@1")].iloc[0]
    # the interval excludes 0 and the raw p is below 0.05, but not after Holm over the page
    assert small.ci_lo > 0 and small.p < 0.05 <= small.p_holm and not small.significant
    wide = ablation_wide(t).set_index(["variant", "metric"])["All categories"]
    assert wide[("big", "P@1")].endswith(" *") and not wide[("small", "P@1")].endswith("*")
