"""Paired significance tests over per-query scores, with Holm's correction (report, analysis page).

The paper claims significance without naming a test (``book/deviations.md`` row 22); the report uses a
two-sided paired t-test over the per-query scores of the test queries (and, as a check that does
not assume normality, the Wilcoxon signed-rank test), each model's score of a query averaged over
its seeds first. Holm's correction runs over the whole family of tests on the page (every setting, metric
and other model at once), and every difference carries a 95% bootstrap interval over queries.
Seed variance enters through the per-query averages: each query's score is the mean over seeds,
so the tests compare seed-averaged models, query by query.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cti_repro.study import METRICS

ALPHA = 0.05
N_BOOT = 2000      # bootstrap replicates of every interval
BOOT_SEED = 0      # the intervals are reproducible


def bootstrap_ci(
    scores: np.ndarray, n_boot: int = N_BOOT, level: float = 0.95, seed: int = BOOT_SEED,
) -> tuple[float, float, float]:
    """Mean of a seeds x queries score matrix and its percentile bootstrap interval.

    Each replicate draws the queries with replacement *and* the seeds with replacement (a two-way
    bootstrap), so the interval holds both the sampling of test queries and the seed-to-seed
    variance of training; with one seed only the queries vary. Multinomial weights make one
    replicate ``w_s^T X w_q / (S Q)``, so 2,000 replicates of a 3 x 1,000 matrix take milliseconds.

    Args:
        scores: [S, Q] per-query scores (rows: seeds, columns: the same queries), or [Q].
        n_boot: replicates.
        level: coverage of the interval.
        seed: seeds the resampling.

    Returns:
        ``(mean, lo, hi)``; NaN if there is no score.

    Example:
        >>> bootstrap_ci(np.array([[0., 100.], [0., 100.]]))[0]
        50.0
    """
    x = np.atleast_2d(np.asarray(scores, dtype=float))
    x = x[:, np.isfinite(x).all(axis=0)]  # a query missing in one seed is left out
    if x.size == 0:
        return math.nan, math.nan, math.nan
    n_s, n_q = x.shape
    rng = np.random.default_rng(seed)
    ws = rng.multinomial(n_s, np.full(n_s, 1 / n_s), size=n_boot).astype(float)
    wq = rng.multinomial(n_q, np.full(n_q, 1 / n_q), size=n_boot).astype(float)
    reps = np.einsum("bs,sq,bq->b", ws, x, wq) / (n_s * n_q)
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a])
    return float(x.mean()), float(lo), float(hi)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down), in the input order; NaN stays NaN.

    With the m finite p-values sorted ascending, ``p_adj(i) = max_{j<=i} min(1, (m - j + 1) p(j))``.

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if not m:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


def per_query_scores(records: list[dict], setting: str, model: str, metric: str) -> pd.Series:
    """Per-query score of ``model`` in ``setting``, averaged over its successful seeds (index: query)."""
    cols = []
    for r in records:
        if r.get("status", "ok") != "ok" or r.get("setting") != setting or r.get("model") != model:
            continue
        vals = (r.get("per_query") or {}).get(metric)
        if vals is not None:
            cols.append(pd.Series(np.asarray(vals, dtype=float), index=list(r.get("queries", [])), name=r.get("seed")))
    if not cols:
        return pd.Series(dtype=float)
    return pd.concat(cols, axis=1).mean(axis=1, skipna=True).sort_index()


def paired_tests(x: Sequence[float], y: Sequence[float]) -> dict:
    """Two-sided paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon signed-rank test of x vs y.

    Returns ``t``, ``p`` (t-test), ``wilcoxon_p`` and a ``note``; p-values are NaN, with the reason
    in ``note``, when there are fewer than 2 pairs, the scores are identical, or the differences
    have zero variance (the t statistic is undefined).
    """
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    out = {"t": math.nan, "p": math.nan, "wilcoxon_p": math.nan, "note": ""}
    d = x - y
    if len(d) < 2:
        out["note"] = f"{len(d)} paired quer{'y' if len(d) == 1 else 'ies'}: no test"
        return out
    if np.all(d == 0):
        out["note"] = "identical scores: no test"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if np.ptp(d) == 0:
            out["note"] = "constant difference: t undefined"
        else:
            res = stats.ttest_rel(x, y)
            out["t"], out["p"] = float(res.statistic), float(res.pvalue)
        try:
            out["wilcoxon_p"] = float(stats.wilcoxon(x, y).pvalue)
        except ValueError as exc:
            out["note"] = (out["note"] + "; " if out["note"] else "") + f"Wilcoxon: {exc}"
    return out


def significance(
    records: list[dict], target: str = "CLIP-ITA", others: Sequence[str] = ("CLIP-IA", "CLIP-I", "MPNet"),
    metrics: Sequence[str] = METRICS, settings: Sequence[str] = ("all", "most_general", "most_specific"),
    alpha: float = ALPHA, family: str = "all",
) -> pd.DataFrame:
    """Is ``target`` different from each of ``others``? Paired tests per setting and metric.

    Args:
        records: result records (per-query scores under the config's AP normalisation).
        target: the model tested against the others.
        others: the models compared with ``target``.
        metrics: metrics to test.
        settings: settings to test.
        alpha: level for ``significant`` (on the Holm-adjusted t-test p-value).
        family: Holm's family: ``all`` (every test of the table at once: settings x metrics x
            others, 54 by default) or ``cell`` (the comparisons within one setting and metric).

    Returns:
        One row per (setting, metric, other): ``n`` (paired queries), ``mean_target``,
        ``mean_other``, ``diff`` with its 95% bootstrap interval ``diff_lo, diff_hi`` (queries
        resampled, pairs kept), ``t``, ``p``, ``p_holm``, ``significant``, ``wilcoxon_p``,
        ``wilcoxon_p_holm``, ``note``.
    """
    if family not in ("all", "cell"):
        raise ValueError(f"family must be 'all' or 'cell', got {family!r}")
    rows = []
    for s in settings:
        for metric in metrics:
            a = per_query_scores(records, s, target, metric)
            group = []
            for other in others:
                b = per_query_scores(records, s, other, metric)
                both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
                res = paired_tests(both.a, both.b)
                if a.empty or b.empty:
                    res["note"] = f"{target if a.empty else other} not run"
                _, lo, hi = bootstrap_ci((both.a - both.b).to_numpy())
                group.append({"setting": s, "metric": metric, "target": target, "other": other, "n": len(both),
                               "mean_target": both.a.mean() if len(both) else math.nan,
                               "mean_other": both.b.mean() if len(both) else math.nan,
                               "diff": (both.a - both.b).mean() if len(both) else math.nan,
                               "diff_lo": lo, "diff_hi": hi, **res})
            if family == "cell":
                _holm_rows(group, alpha)
            rows += group
    if family == "all":
        _holm_rows(rows, alpha)
    cols = ["setting", "metric", "target", "other", "n", "mean_target", "mean_other", "diff", "diff_lo", "diff_hi",
            "t", "p", "p_holm", "significant", "wilcoxon_p", "wilcoxon_p_holm", "note"]
    return pd.DataFrame(rows, columns=cols)


def _holm_rows(rows: list[dict], alpha: float) -> None:
    """Holm-adjust the ``p`` and ``wilcoxon_p`` of ``rows`` as one family; set ``significant``."""
    for key in ("p", "wilcoxon_p"):
        for row, adj in zip(rows, holm([r[key] for r in rows])):
            row[f"{key}_holm"] = float(adj)
    for row in rows:
        row["significant"] = bool(np.isfinite(row["p_holm"]) and row["p_holm"] < alpha)


def significance_summary(sig: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Compact view of :func:`significance`: rows (setting, metric), one column per other model,
    cells ``"+3.21 (p=0.004) *"`` (difference target − other in points, Holm-adjusted t-test p-value;
    ``*`` if it is below ``alpha``)."""
    def cell(r: pd.Series) -> str:
        if not np.isfinite(r["diff"]):
            return r.note or "—"
        p = f"p={r.p_holm:.2g}" if np.isfinite(r.p_holm) else (r.note or "no test")
        ci = f" [{r.diff_lo:+.2f}, {r.diff_hi:+.2f}]" if "diff_lo" in r and np.isfinite(r.diff_lo) else ""
        return f"{r['diff']:+.2f}{ci} ({p}){' *' if r.significant else ''}"

    if sig.empty:
        return pd.DataFrame(columns=["setting", "metric"])
    t = sig.assign(cell=sig.apply(cell, axis=1))
    wide = t.pivot_table(index=["setting", "metric"], columns="other", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=list(dict.fromkeys(sig.other)))
    wide.columns.name = None
    return wide.reset_index()


__all__ = ["bootstrap_ci", "N_BOOT", "BOOT_SEED", "holm", "paired_tests", "per_query_scores", "significance", "significance_summary", "ALPHA"]
