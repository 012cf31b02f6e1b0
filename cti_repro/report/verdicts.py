"""Table 1's verdict: is the published value one our reproduction could have drawn?

The published value is itself one draw: one training run evaluated on the paper's own test
split. A faithful reproduction differs from it by its own sampling error *and* the paper's, so
the verdict compares the published value with :func:`consistency_range`, our mean plus or minus a
t quantile times ``sqrt(se_ours^2 + se_paper^2)``. ``se_ours`` is the standard error of our mean
over the seeds x queries matrix (:func:`cti_repro.report.stats.seed_query_test`); ``se_paper`` is
that of a single run on as many fresh queries: the per-seed query variance over ``Q`` plus one
seed's variance. With ours alone, a faithful reproduction was "consistent" in ~83% of simulated
cells; with both, ~95% (``tests/report/test_verdicts.py``). A range wider than
:data:`INCONCLUSIVE_WIDTH` points cannot tell a reproduction from a miss (the most-general setting
has ~28 test queries at paper scale: P@1 +-18 points): such a cell is "inconclusive".
"""

from __future__ import annotations

import math

import numpy as np

from cti_repro.report.common import fmt

LEVEL = 0.95
INCONCLUSIVE_WIDTH = 20.0  # points: a consistency range wider than this decides nothing
VERDICTS = ("consistent", "inconclusive", "higher", "lower", "demonstration")
VERDICT_RULE = (
    f"Ours reproduces the published value (*consistent*) when it lies inside the consistency range: our mean "
    f"± the {LEVEL:.0%} t quantile × √(se_ours² + se_paper²), where se_ours is the standard error of our mean over "
    f"the test queries and the seeds and se_paper that of one training run on as many fresh queries (the published "
    f"value is one draw too); *inconclusive* when it lies inside a range wider than {fmt(INCONCLUSIVE_WIDTH, 0)} "
    f"points; *higher* / *lower* when ours lies above / below it beyond the range. Only a run that reproduces the "
    f"paper's set-up (the real XMarket catalogue, pretrained weights for every encoder the model uses, the paper's "
    f"protocol; a demonstration label only adds caution) gets these verdicts: any other gets *demonstration*, "
    f"whatever its numbers")


def consistency_range(scores: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a published value is consistent with our ``[..., S, Q]`` scores: ``(mean, lo, hi)``.

    Vectorised over leading axes. ``se_ours^2 = var_q(seed-averaged)/Q + var_s(seed means)/S``;
    ``se_paper^2 = mean_s(var_q(seed s))/Q + var_s(seed means)`` (one run; with one seed of ours
    the seed variance is unmeasured and counts 0). Degrees of freedom: Welch-Satterthwaite over
    the query term (``Q - 1``) and the seed term (``S - 1``). NaN bounds below 2 queries.
    """
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    n_s, n_q = x.shape[-2], x.shape[-1]
    mean = x.mean(axis=(-2, -1))
    if n_q < 2:
        nan = np.full(mean.shape, np.nan)
        return mean, nan, nan
    v_query = (x.mean(axis=-2).var(axis=-1, ddof=1) + x.var(axis=-1, ddof=1).mean(axis=-1)) / n_q
    v_seed = x.mean(axis=-1).var(axis=-1, ddof=1) * (1 + 1 / n_s) if n_s > 1 else np.zeros_like(mean)
    var = v_query + v_seed
    with np.errstate(divide="ignore", invalid="ignore"):
        df = var ** 2 / (v_query ** 2 / (n_q - 1) + (v_seed ** 2 / (n_s - 1) if n_s > 1 else 0))
        half = np.where(var > 0, stats.t.ppf(0.5 + level / 2, df) * np.sqrt(var), 0.0)
    return mean, mean - half, mean + half


def verdict(published: float, lo: float, hi: float, demonstration: bool = False,
            max_width: float = INCONCLUSIVE_WIDTH) -> str:
    """:data:`VERDICT_RULE` on a consistency range ``[lo, hi]``: ``consistent`` / ``inconclusive`` /
    ``higher`` / ``lower`` / ``demonstration``; ``n/a`` if a value is missing. Exact comparisons:
    a published value any amount outside the range is ``higher`` / ``lower``."""
    if demonstration:
        return "demonstration"
    if not all(np.isfinite(v) for v in (published, lo, hi)):
        return "n/a"
    if lo > published:
        return "higher"
    if hi < published:
        return "lower"
    return "inconclusive" if hi - lo > max_width else "consistent"


def cell_range(x: np.ndarray) -> tuple[float, float]:
    """:func:`consistency_range` bounds of one seeds x queries matrix (NaN when empty)."""
    if not x.size:
        return math.nan, math.nan
    _, lo, hi = consistency_range(x)
    return float(lo), float(hi)


__all__ = ["INCONCLUSIVE_WIDTH", "LEVEL", "VERDICTS", "VERDICT_RULE", "cell_range", "consistency_range", "verdict"]
