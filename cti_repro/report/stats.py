"""Significance over the seeds x queries matrix, Holm's correction, bootstrap intervals (report pages).

The paper claims significance without naming a test (``book/deviations.md`` row 22). A model's
score is a seeds x queries matrix: the test queries are one sample, the training seeds another,
and a difference between two models must hold against both. :func:`seed_query_test` is a t-test
whose variance has both parts: the query-to-query variance of the seed-averaged difference over
``Q`` and each model's seed-to-seed variance over its seed count, with Welch-Satterthwaite degrees
of freedom. Averaging the seeds first and testing over the queries alone (this module's old rule)
leaves training noise out: with equal models, a seed spread of 1.5 points and 3 seeds it rejected
in 13% of tests at 500 queries and 29% at 2,000 (``tests/report/test_stats.py`` simulates it).
The two-way percentile bootstrap (:func:`bootstrap_ci`) is not the test: with 3 seeds it draws
from 10 multisets and shrinks the seed variance by (S-1)/S, so it rejects too often too.
Holm's correction runs over each page's whole family (every setting, metric and comparison).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cti_repro.study import METRICS

ALPHA = 0.05
N_BOOT = 2000      # bootstrap replicates of every interval
BOOT_SEED = 0      # the intervals are reproducible
TEST_RULE = ("two-sided t-test of the mean difference over the seeds x queries matrix: its variance is the "
             "query-to-query variance of the seed-averaged difference over the number of queries plus each "
             "model's seed-to-seed variance over its number of seeds (seeds paired when both sides trained "
             "from the same seeds), with Welch-Satterthwaite degrees of freedom; intervals are the matching "
             "95% t-intervals; Holm's correction runs over the page's whole family of tests")


def seed_query_test(a: np.ndarray, b: np.ndarray | None = None, level: float = 0.95) -> dict[str, np.ndarray]:
    """Is the mean of ``a`` (minus ``b``) zero, against query *and* seed sampling? Vectorised.

    Args:
        a: ``[..., S_a, Q]`` scores (seeds x queries; leading axes are independent tests). With
            ``b`` None, ``a`` is already a difference matrix with seeds paired (variant − default
            trained from the same seed), and its own seed-to-seed variance is the training noise.
        b: ``[..., S_b, Q]`` the other model's scores on the same queries (seeds not paired:
            each side's seed variance counts separately), or None.
        level: coverage of the interval ``lo, hi``.

    Returns:
        Arrays over the leading axes: ``diff`` (mean difference), ``se``, ``df``, ``t``, ``p``
        (two-sided), ``lo``, ``hi``. ``se = sqrt(var_q(d_q)/Q + sum_m var_s(mean_m,s)/S_m)``;
        a side with one seed adds no seed term (its training noise is unmeasured). NaN where
        ``Q < 2``; where ``se`` is 0 the difference is exact: ``lo = hi = diff``, ``p`` NaN.
        The seed term also holds the seed x query residual over ``Q``,
        counted once more in the query term: slightly conservative, by ``1/(S Q)`` of it.

    Example:
        >>> r = seed_query_test(np.array([[1., 2., 3.], [2., 3., 4.]]))
        >>> float(r["diff"]), round(float(r["se"]) ** 2, 4)
        (2.5, 0.5833)
    """
    from scipy import stats

    sides = [np.asarray(a, float)] + ([] if b is None else [np.asarray(b, float)])
    n_q = sides[0].shape[-1]
    d_q = sides[0].mean(axis=-2) - (sides[1].mean(axis=-2) if b is not None else 0.0)  # [..., Q]
    terms = [(d_q.var(axis=-1, ddof=1) / n_q if n_q > 1 else np.full(d_q.shape[:-1], np.nan), n_q - 1)]
    for x in sides:
        n_s = x.shape[-2]
        if n_s > 1:
            terms.append((x.mean(axis=-1).var(axis=-1, ddof=1) / n_s, n_s - 1))
    var = sum(v for v, _ in terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = var ** 2 / sum(v ** 2 / k for v, k in terms)
        se = np.sqrt(var)
        diff = d_q.mean(axis=-1)
        bad = ~(se > 0)
        t = np.where(bad, np.nan, diff / se)
        df = np.where(bad, np.nan, df)
        p = 2 * stats.t.sf(np.abs(t), df)
        # no variance at all (an exact difference): the interval is the point, the p-value undefined
        half = np.where(se == 0, 0.0, stats.t.ppf(0.5 + level / 2, df) * se)
    return {"diff": diff, "se": np.where(bad, np.nan, se), "df": df, "t": t, "p": p,
            "lo": diff - half, "hi": diff + half}


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
    # the query draw comes first, so it is the same whatever the number of seeds: one shared
    # draw for every seed (identical seed rows give exactly the one-row interval)
    wq = rng.multinomial(n_q, np.full(n_q, 1 / n_q), size=n_boot).astype(float)
    ws = rng.multinomial(n_s, np.full(n_s, 1 / n_s), size=n_boot).astype(float)
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


def score_matrix(records: list[dict], setting: str, model: str, metric: str) -> pd.DataFrame:
    """Per-query scores of ``model`` in ``setting``: one row per successful seed, one column per query."""
    rows = {}
    for r in records:
        if r.get("status", "ok") != "ok" or r.get("setting") != setting or r.get("model") != model:
            continue
        vals = (r.get("per_query") or {}).get(metric)
        if vals is not None:
            rows[r.get("seed", 0)] = pd.Series(np.asarray(vals, dtype=float), index=list(r.get("queries", [])))
    return pd.DataFrame(rows).T if rows else pd.DataFrame()


def matrix_test(a: pd.DataFrame, b: pd.DataFrame, paired_seeds: bool = False) -> dict:
    """:func:`seed_query_test` of two seeds x queries frames on the queries they share.

    With ``paired_seeds`` the rows are matched by seed (a variant and the default trained from the
    same seed) and the test runs on their difference. Returns ``n`` (queries), ``n_seeds``
    (``"3 / 3"``), ``mean_a``, ``mean_b``, ``diff``, ``lo``, ``hi``, ``se``, ``df``, ``t``, ``p``
    and a ``note`` saying why a p-value is missing or what the test could not measure.
    """
    out = {"n": 0, "n_seeds": "", "mean_a": math.nan, "mean_b": math.nan, "diff": math.nan, "lo": math.nan,
           "hi": math.nan, "se": math.nan, "df": math.nan, "t": math.nan, "p": math.nan, "note": ""}
    if a.empty or b.empty:
        return out
    if paired_seeds:
        seeds = a.index.intersection(b.index, sort=False)
        a, b = a.loc[seeds], b.loc[seeds]
    queries = a.columns.intersection(b.columns, sort=False)
    complete = a[queries].notna().all() & b[queries].notna().all()  # a query missing in one seed is left out
    a, b = a[queries[complete.to_numpy()]], b[queries[complete.to_numpy()]]
    xa, xb = a.to_numpy(), b.to_numpy()
    out.update(n=xa.shape[1], n_seeds=f"{len(a)} / {len(b)}")
    if xa.size == 0 or xb.size == 0:
        out["note"] = "no paired seed" if paired_seeds and len(a) == 0 else "no shared query"
        return out
    out.update(mean_a=float(xa.mean()), mean_b=float(xb.mean()))
    res = seed_query_test(xa - xb) if paired_seeds else seed_query_test(xa, xb)
    out.update({k: float(res[k]) for k in ("diff", "lo", "hi", "se", "df", "t", "p")})
    notes = []
    if xa.shape[1] < 2:
        notes.append(f"{xa.shape[1]} paired quer{'y' if xa.shape[1] == 1 else 'ies'}: no test")
    elif not np.isfinite(out["p"]):
        notes.append("identical scores: no test" if np.array_equal(xa.mean(0), xb.mean(0)) and not paired_seeds
                     or (paired_seeds and not (xa - xb).any()) else "no variance in the difference: no test")
    elif paired_seeds and len(a) == 1:
        notes.append("one paired seed: training noise not in the test")
    return out | {"note": "; ".join(notes)}


def significance(
    records: list[dict], target: str = "CLIP-ITA", others: Sequence[str] = ("CLIP-IA", "CLIP-I", "MPNet"),
    metrics: Sequence[str] = METRICS, settings: Sequence[str] = ("all", "most_general", "most_specific"),
    alpha: float = ALPHA, family: str = "all",
) -> pd.DataFrame:
    """Is ``target`` different from each of ``others``? :func:`seed_query_test` per setting and metric.

    Each model's successful seeds form its seeds x queries matrix; the two models' seeds are not
    paired (different models), so each side's seed-to-seed variance enters the test.

    Args:
        records: result records (per-query scores under the config's AP normalisation).
        target: the model tested against the others.
        others: the models compared with ``target``.
        metrics: metrics to test.
        settings: settings to test.
        alpha: level for ``significant`` (on the Holm-adjusted p-value).
        family: Holm's family: ``all`` (every test of the table at once: settings x metrics x
            others, 54 by default) or ``cell`` (the comparisons within one setting and metric).

    Returns:
        One row per (setting, metric, other): ``n`` (shared queries), ``n_seeds`` (target / other),
        ``mean_target``, ``mean_other``, ``diff`` with its 95% t-interval ``diff_lo, diff_hi``,
        ``se``, ``df``, ``t``, ``p``, ``p_holm``, ``significant``, ``note``.
    """
    if family not in ("all", "cell"):
        raise ValueError(f"family must be 'all' or 'cell', got {family!r}")
    rows = []
    for s in settings:
        for metric in metrics:
            a = score_matrix(records, s, target, metric)
            group = []
            for other in others:
                b = score_matrix(records, s, other, metric)
                res = matrix_test(a, b)
                if a.empty or b.empty:
                    res["note"] = f"{target if a.empty else other} not run"
                group.append({"setting": s, "metric": metric, "target": target, "other": other, "n": res["n"],
                              "n_seeds": res["n_seeds"], "mean_target": res["mean_a"], "mean_other": res["mean_b"],
                              "diff": res["diff"], "diff_lo": res["lo"], "diff_hi": res["hi"], "se": res["se"],
                              "df": res["df"], "t": res["t"], "p": res["p"], "note": res["note"]})
            if family == "cell":
                holm_rows(group, alpha)
            rows += group
    if family == "all":
        holm_rows(rows, alpha)
    cols = ["setting", "metric", "target", "other", "n", "n_seeds", "mean_target", "mean_other", "diff", "diff_lo",
            "diff_hi", "se", "df", "t", "p", "p_holm", "significant", "note"]
    return pd.DataFrame(rows, columns=cols)


def holm_rows(rows: list[dict], alpha: float = ALPHA, key: str = "p") -> None:
    """Holm-adjust ``row[key]`` over ``rows`` as one family, in place: ``p_holm`` and ``significant``."""
    for row, adj in zip(rows, holm([r[key] for r in rows])):
        row["p_holm"] = float(adj)
        row["significant"] = bool(np.isfinite(adj) and adj < alpha)


def significance_summary(sig: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Compact view of :func:`significance`: rows (setting, metric), one column per other model,
    cells ``"+3.21 [+1.02, +5.40] (p=0.004) *"`` (difference target − other in points, its 95%
    interval, the Holm-adjusted p-value; ``*`` if it is below ``alpha``)."""
    def cell(r: pd.Series) -> str:
        if not np.isfinite(r["diff"]):
            return r.note or "—"
        p = f"p={r.p_holm:.2g}" if np.isfinite(r.p_holm) else (r.note or "no test")
        ci = f" [{r.diff_lo:+.2f}, {r.diff_hi:+.2f}]" if np.isfinite(r.diff_lo) else ""
        return f"{r['diff']:+.2f}{ci} ({p}){' *' if r.significant else ''}"

    if sig.empty:
        return pd.DataFrame(columns=["setting", "metric"])
    t = sig.assign(cell=sig.apply(cell, axis=1))
    wide = t.pivot_table(index=["setting", "metric"], columns="other", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=list(dict.fromkeys(sig.other)))
    wide.columns.name = None
    return wide.reset_index()


__all__ = ["ALPHA", "BOOT_SEED", "N_BOOT", "TEST_RULE", "bootstrap_ci", "holm", "holm_rows", "matrix_test",
           "score_matrix", "seed_query_test", "significance", "significance_summary"]
