"""Tables for the report book: the paper's Tables 1-3 beside ours, AP@k normalisations, tests.

Every function takes the result records of a study (:func:`load_study`) and returns a pandas
DataFrame; the figures live in :mod:`cti_repro.report.figures` and are re-exported here. Numbers
are percent, as in the paper. Reproduced values are the mean over seeds of the per-run means;
``sd`` is the sample standard deviation over seeds (NaN with one seed).

Example:
    >>> from cti_repro import report
    >>> records = report.load_study("runs/smoke")
    >>> t1 = report.table1(records)
    >>> report.table1_wide(t1).head()
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cti_repro.report import paper
from cti_repro.report.common import fmt, ok_records, study_order
from cti_repro.report.reproduction import reproduces
from cti_repro.report.stats import bootstrap_ci
from cti_repro.report.styles import VERDICT_COLOURS
from cti_repro.report.verdicts import VERDICT_RULE, VERDICTS, cell_range, verdict
from cti_repro.results import load_results, results_frame
from cti_repro.study import AP_NORM_LABELS, METRICS, SETTING_LABELS, SETTINGS

# ---- the verdict (cti_repro.report.verdicts) and what comparison.csv holds ------------------------
COMPARISON_COLUMNS = ["setting", "model", "metric", "published", "mean", "sd", "ci_lo", "ci_hi", "range_lo",
                      "range_hi", "n_queries", "points_per_query", "reproduces", "verdict"]


def load_study(results_dir: str | Path | Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every result record under one or more results folders (failed rows included)."""
    dirs = [results_dir] if isinstance(results_dir, (str, Path)) else list(results_dir)
    return [r for d in dirs for r in load_results(d)]


def _score_matrix(records: list[dict], metric: str) -> np.ndarray:
    """Seeds x queries per-query scores of the successful runs (queries aligned by name)."""
    rows = [pd.Series(np.asarray(r["per_query"][metric], float), index=r.get("queries", []))
            for r in records if metric in (r.get("per_query") or {})]
    return pd.DataFrame(rows).to_numpy() if rows else np.empty((0, 0))


# ---- Table 1 ---------------------------------------------------------------------------------
def table1(records: list[dict], published: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
    """The paper's Table 1 beside ours, one row per (setting, model, metric).

    Args:
        records: result records (:func:`load_study`).
        published: the published table, a CSV path, or None for :func:`cti_repro.report.paper.table1`.

    Returns:
        Columns ``setting, model, metric, published, mean, sd, ci_lo, ci_hi, range_lo, range_hi,
        n, n_queries, points_per_query, n_failed, diff, reproduces, verdict, position, status``.
        ``mean`` is the mean over seeds of the runs' means, ``sd`` the sd over seeds, ``ci_lo,
        ci_hi`` the 95% interval of :func:`cti_repro.report.stats.bootstrap_ci` (queries and seeds
        resampled), ``range_lo, range_hi`` the consistency range of
        :func:`cti_repro.report.verdicts.consistency_range` (ours and the paper's sampling error),
        ``points_per_query`` = 100 / n_queries (what one query moves the mean by, at most).
        ``reproduces``: every successful seed of the row reproduces the paper's set-up
        (:func:`cti_repro.report.reproduction.reproduces`). ``verdict``: :data:`VERDICT_RULE`,
        ``FAILED`` or ``not run``; ``position`` is where the published value lies even for
        demonstration runs (``consistent`` / ``inconclusive`` / ``higher`` / ``lower``).
        ``status`` is ``ok`` (at least one successful seed), ``failed`` or ``not run``. Rows of
        the published table come first in its order, then any extra (setting, model).
    """
    pub = published if isinstance(published, pd.DataFrame) else paper.table1(published)
    pub_idx = pub.set_index(["setting", "model"])
    res = results_frame(records)
    oks = ok_records(records)
    keys = list(pub_idx.index) + study_order([k for k in zip(res.setting, res.model) if k not in pub_idx.index])
    rows = []
    for setting, model in keys:
        mine = res[(res.setting == setting) & (res.model == model)]
        ok, n_failed = mine[mine.status == "ok"], int((mine.status != "ok").sum())
        recs = [r for r in oks if r.get("setting") == setting and r.get("model") == model]
        real = bool(recs) and all(reproduces(r) for r in recs)  # what ran decides, not the label
        for metric in METRICS:
            p = float(pub_idx.loc[(setting, model), metric]) if (setting, model) in pub_idx.index else math.nan
            vals = pd.to_numeric(ok[metric], errors="coerce").dropna()
            n = len(vals)
            mean = float(vals.mean()) if n else math.nan
            sd = float(vals.std(ddof=1)) if n > 1 else math.nan
            x = _score_matrix(recs, metric)
            _, lo, hi = bootstrap_ci(x) if x.size else (math.nan, math.nan, math.nan)
            x = x[:, np.isfinite(x).all(axis=0)] if x.size else x  # a query missing in one seed is left out
            r_lo, r_hi = cell_range(x)
            n_q = int(x.shape[1]) if x.size else 0
            status = "ok" if len(ok) else ("failed" if n_failed else "not run")
            position = verdict(p, r_lo, r_hi)
            v = (verdict(p, r_lo, r_hi, not real) if status == "ok" else
                 {"failed": "FAILED", "not run": "not run"}[status])
            rows.append({"setting": setting, "model": model, "metric": metric, "published": p, "mean": mean,
                         "sd": sd, "ci_lo": lo, "ci_hi": hi, "range_lo": r_lo, "range_hi": r_hi, "n": n,
                         "n_queries": n_q, "points_per_query": 100 / n_q if n_q else math.nan,
                         "n_failed": n_failed, "diff": mean - p, "reproduces": real, "verdict": v,
                         "position": position, "status": status})
    return pd.DataFrame(rows)


def comparison_frame(t1: pd.DataFrame) -> pd.DataFrame:
    """:func:`table1` with exactly :data:`COMPARISON_COLUMNS` (what ``comparison.csv`` holds)."""
    return t1[COMPARISON_COLUMNS].copy()


def per_query_frame(records: list[dict]) -> pd.DataFrame:
    """Every successful run's per-query metrics, long format: ``setting, model, seed, query, seen,
    metric, value`` (percent; AP@k under the run's ``ap_norm``)."""
    rows = []
    for r in ok_records(records):
        queries, seen = r.get("queries", []), r.get("seen") or [None] * len(r.get("queries", []))
        for metric, vals in (r.get("per_query") or {}).items():
            rows += [{"setting": r["setting"], "model": r["model"], "seed": int(r.get("seed", 0)), "query": q,
                      "seen": s, "metric": metric, "value": float(v)} for q, s, v in zip(queries, seen, vals)]
    return pd.DataFrame(rows, columns=["setting", "model", "seed", "query", "seen", "metric", "value"])


def write_comparison(records: list[dict], results_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<results_dir>/comparison.csv`` (:func:`comparison_frame`, one line per Table 1 cell)
    and ``<results_dir>/per_query.parquet`` (:func:`per_query_frame`), atomically."""
    import io

    from cti_repro.io_utils import atomic_write_bytes

    out = Path(results_dir)
    csv = atomic_write_bytes(out / "comparison.csv",
                             comparison_frame(table1(records)).to_csv(index=False, float_format="%.6g").encode())
    buf = io.BytesIO()
    per_query_frame(records).to_parquet(buf, index=False)
    return csv, atomic_write_bytes(out / "per_query.parquet", buf.getvalue())


def table1_wide(t1: pd.DataFrame) -> pd.DataFrame:
    """18 rows (setting, model) x 6 metrics; each cell ``"published / ours"`` (2 decimals).

    Failed rows read ``"35.71 / FAILED"``, missing ones ``"35.71 / not run"``.
    """
    def cell(r: pd.Series) -> str:
        ours = {"failed": "FAILED", "not run": "not run"}.get(r.status, fmt(r["mean"]))
        return f"{fmt(r.published)} / {ours}"

    t = t1.assign(cell=t1.apply(cell, axis=1))
    wide = t.pivot_table(index=["setting", "model"], columns="metric", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=[m for m in METRICS if m in wide.columns])
    wide.columns.name = None
    return wide.reset_index()


def _strictstudy_order(values: dict[str, float]) -> str:
    """``"A > B = C > D"`` (ties at 2 decimals shown as ``=``)."""
    items = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    out = ""
    for i, (m, v) in enumerate(items):
        if i:
            out += " = " if round(v, 2) == round(items[i - 1][1], 2) else " > "
        out += m
    return out


def ranking_differences(t1: pd.DataFrame) -> pd.DataFrame:
    """The ranking of models per setting and metric, in the paper and in ours.

    A pair of models is *swapped* when the paper orders it strictly one way and our means
    strictly the other (ties on either side are not a swap); ``differs`` is true when any pair
    is swapped. Only models with both a published value and a reproduced mean take part.

    Returns:
        Columns ``setting, metric, paper_order, our_order, swapped, swapped_models, differs,
        kendall_tau``.
    """
    from scipy.stats import kendalltau

    rows = []
    for (setting, metric), g in t1.groupby(["setting", "metric"], sort=False):
        g = g[np.isfinite(g.published) & np.isfinite(g["mean"])]
        pub, ours = dict(zip(g.model, g.published)), dict(zip(g.model, g["mean"]))
        models = list(g.model)
        swaps = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]
                 if (pub[a] - pub[b]) * (ours[a] - ours[b]) < 0]
        tau = math.nan
        if len(models) > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tau = float(kendalltau(list(pub.values()), list(ours.values())).statistic)
        rows.append({"setting": setting, "metric": metric, "paper_order": _strictstudy_order(pub),
                     "our_order": _strictstudy_order(ours),
                     "swapped": ", ".join(f"{a} ↔ {b}" for a, b in swaps),
                     "swapped_models": sorted({m for s in swaps for m in s}),
                     "differs": bool(swaps), "kendall_tau": tau})
    return pd.DataFrame(rows, columns=["setting", "metric", "paper_order", "our_order", "swapped",
                                       "swapped_models", "differs", "kendall_tau"])


# ---- Tables 2 and 3, AP@k normalisations --------------------------------------------------------
def _by(records: list[dict], model: str, setting: str) -> list[dict]:
    return sorted((r for r in ok_records(records) if r.get("model") == model and r.get("setting") == setting),
                  key=lambda r: r.get("seed", 0))


def table2(records: list[dict], model: str = "CLIP-ITA") -> pd.DataFrame:
    """The paper's Table 2 beside ours: wrong top-1 results in the same vs a different tree.

    Ours: mean over seeds of the counts in ``error_analysis`` (one top-1 per query), and the
    pooled shares of same-tree errors with ``d = depth(predicted) - depth(target)`` > 0, < 0, = -1.
    The last row (``total``) sums the settings; the paper's total is the printed one.
    """
    def pct(part: float, whole: float) -> float:
        return 100 * part / whole if np.isfinite(whole) and whole else math.nan

    rows = []
    for s in [*SETTINGS, "total"]:
        settings = SETTINGS if s == "total" else (s,)
        runs = [r for x in settings for r in _by(records, model, x) if r.get("error_analysis")]
        per_setting = [[r for r in runs if r["setting"] == x] for x in settings]

        def mean_count(key: str) -> float:  # mean over seeds, summed over the settings
            vals = [np.mean([r["error_analysis"].get(key, 0) for r in rs]) for rs in per_setting if rs]
            return float(np.sum(vals)) if vals else math.nan

        hist: dict[int, int] = {}
        for r in runs:
            for d, c in (r["error_analysis"].get("same_tree_depth_diff") or {}).items():
                hist[int(d)] = hist.get(int(d), 0) + int(c)
        tot = sum(hist.values())
        same, diff = mean_count("same_tree"), mean_count("different_tree")
        paper_row = paper.table2_total() if s == "total" else paper.table2()[s]
        queries = [np.mean([len(r.get("queries", [])) for r in rs]) for rs in per_setting if rs]
        rows.append({
            "setting": s, "n": len(runs), "queries": float(np.sum(queries)) if queries else math.nan,
            "same tree": same, "different tree": diff, "same tree %": pct(same, same + diff),
            "d>0 %": pct(sum(c for d, c in hist.items() if d > 0), tot),
            "d<0 %": pct(sum(c for d, c in hist.items() if d < 0), tot),
            "d=-1 %": pct(hist.get(-1, 0), tot),
            "paper same tree": paper_row["same_tree"], "paper different tree": paper_row["different_tree"],
            "paper same tree %": pct(paper_row["same_tree"], paper_row["same_tree"] + paper_row["different_tree"]),
        })
    return pd.DataFrame(rows)


def table3(records: list[dict], model: str = "CLIP-ITA", published: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's Table 3 beside ours: CLIP-ITA on seen vs unseen test categories.

    Rows per setting: ``overall`` (Table 1), ``unseen``, ``seen``; each once from the paper and
    once ours (mean over seeds; NaN where a subset is empty). ``queries`` is our subset size.
    """
    pub = (published if published is not None else paper.table1()).set_index(["setting", "model"])
    rows = []
    for s in SETTINGS:
        runs = _by(records, model, s)
        for sub in ("overall", "unseen", "seen"):
            if sub == "overall":
                published_row = pub.loc[(s, model), list(METRICS)].to_dict() if (s, model) in pub.index else {}
                ours = [r.get("means") or {} for r in runs]
                nq = [len(r.get("queries", [])) for r in runs]
            else:
                published_row = paper.table3()[(s, sub)]
                ours = [(r.get("subsets") or {}).get(sub) or {} for r in runs]
                nq = [(r.get("subsets") or {}).get(f"n_{sub}", 0) for r in runs]
            rows.append({"setting": s, "subset": sub, "source": "paper", "queries": math.nan, "n": math.nan,
                         **{m: published_row.get(m, math.nan) for m in METRICS}})
            vals = {m: [v for o in ours if (v := o.get(m)) is not None and np.isfinite(v)] for m in METRICS}
            rows.append({"setting": s, "subset": sub, "source": "ours", "queries": np.mean(nq) if nq else math.nan,
                         "n": len(runs), **{m: np.mean(v) if v else math.nan for m, v in vals.items()}})
    return pd.DataFrame(rows)


def ap_norm_table(records: list[dict], published: pd.DataFrame | None = None) -> pd.DataFrame:
    """MAP@5 / MAP@10 under the three AP@k normalisations (mean over seeds) beside the paper.

    ``hits``: divide by the relevant items in the top k (the package default); ``min(k, R)``;
    ``R``: by all relevant items (trec_eval ``map_cut``).
    """
    pub = (published if published is not None else paper.table1()).set_index(["setting", "model"])
    keys = study_order([(r["setting"], r["model"]) for r in ok_records(records) if r.get("means_by_ap_norm")])
    rows = []
    for s, m in keys:
        runs = [r for r in _by(records, m, s) if r.get("means_by_ap_norm")]
        row = {"setting": s, "model": m, "n": len(runs)}
        for metric in ("MAP@5", "MAP@10"):
            for norm, label in AP_NORM_LABELS.items():
                v = [x for r in runs if (x := (r["means_by_ap_norm"].get(norm) or {}).get(metric)) is not None]
                row[f"{metric} {label}"] = float(np.mean(v)) if v else math.nan
            row[f"{metric} paper"] = float(pub.loc[(s, m), metric]) if (s, m) in pub.index else math.nan
        rows.append(row)
    cols = ["setting", "model", "n"] + [f"{k} {v}" for k in ("MAP@5", "MAP@10") for v in (*AP_NORM_LABELS.values(), "paper")]
    return pd.DataFrame(rows, columns=cols)


# ---- styled blocks ---------------------------------------------------------------------------
def table1_block(t1: pd.DataFrame, setting: str) -> Any:
    """One setting of Table 1 as a styled HTML table (pandas Styler): models x metrics.

    Each cell shows the published value, ours (mean ± sd, n seeds), our 95% interval, the
    consistency range the verdict uses and the verdict; the background says consistent (green) /
    inconclusive (sand) / higher or lower (orange / red) /
    demonstration (blue-grey: no pass colour) / FAILED or not run (grey); a cell
    whose model takes part in a ranking swap for that metric has an orange frame and ``⇅``.
    """
    t = t1[t1.setting == setting]
    swapped = {(r.metric, m) for r in ranking_differences(t).itertuples() for m in r.swapped_models}
    cells, colours = {}, {}
    for r in t.itertuples():
        if r.status == "ok":
            sd = f" ± {fmt(r.sd)}" if np.isfinite(r.sd) else ""
            ours = (f"ours {fmt(r.mean)}{sd} <small>(n={r.n})</small><br><small>[{fmt(r.ci_lo)}, {fmt(r.ci_hi)}]; "
                    f"range [{fmt(r.range_lo)}, {fmt(r.range_hi)}]</small>")
            tail = r.verdict + (f" <small>({r.position})</small>" if r.verdict == "demonstration" else "")
        else:
            ours, tail = f"<b>{r.verdict}</b>", ""
        mark = " ⇅" if (r.metric, r.model) in swapped else ""
        cells.setdefault(r.model, {})[r.metric] = f"paper {fmt(r.published)}<br>{ours}<br>{tail}{mark}"
        css = (f"background-color: {VERDICT_COLOURS.get(r.verdict, '#fff')}; text-align: center; font-size: 0.85em; "
               "padding: 0.3em 0.5em; border: 1px solid white")
        if mark:
            css += "; outline: 3px solid #f0a020; outline-offset: -3px"
        colours.setdefault(r.model, {})[r.metric] = css
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(METRICS))
    css = pd.DataFrame.from_dict(colours, orient="index").reindex(index=frame.index, columns=frame.columns)
    frame.index.name = None
    # class cti-table1: the book's stylesheet fits the whole block in the column (book/_static/cti.css)
    return (frame.style.apply(lambda _: css, axis=None).set_caption(SETTING_LABELS.get(setting, setting))
            .set_table_attributes('class="cti-table1"')
            .set_table_styles([{"selector": "th", "props": "white-space: nowrap; padding: 0.2em 0.5em"}]))


__all__ = ["VERDICT_RULE", "VERDICTS", "COMPARISON_COLUMNS", "comparison_frame", "per_query_frame",
           "write_comparison", "load_study", "verdict", "table1", "table1_wide", "table1_block",
           "ranking_differences", "table2", "table3", "ap_norm_table"]
