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
from cti_repro.report.styles import VERDICT_COLOURS
from cti_repro.results import load_results, results_frame
from cti_repro.study import AP_NORM_LABELS, METRICS, SETTING_LABELS, SETTINGS

# ---- the tolerance of the OK / MISMATCH verdict ------------------------------------------------
TOL_ABS = 2.0   # percentage points
TOL_REL = 0.10  # share of the published value
TOLERANCE_RULE = (f"OK if |reproduced − published| ≤ max({TOL_ABS:g} points, {TOL_REL:.0%} of the published value), "
                  "else MISMATCH; reproduced = mean over seeds")


def load_study(results_dir: str | Path | Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every result record under one or more results folders (failed rows included)."""
    dirs = [results_dir] if isinstance(results_dir, (str, Path)) else list(results_dir)
    return [r for d in dirs for r in load_results(d)]


def verdict(published: float, reproduced: float) -> str:
    """``OK`` / ``MISMATCH`` under :data:`TOLERANCE_RULE`; ``n/a`` if either value is missing."""
    if not (np.isfinite(published) and np.isfinite(reproduced)):
        return "n/a"
    return "OK" if abs(reproduced - published) <= max(TOL_ABS, TOL_REL * abs(published)) + 1e-9 else "MISMATCH"


# ---- Table 1 ---------------------------------------------------------------------------------
def table1(records: list[dict], published: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
    """The paper's Table 1 beside ours, one row per (setting, model, metric).

    Args:
        records: result records (:func:`load_study`).
        published: the published table, a CSV path, or None for :func:`cti_repro.report.paper.table1`.

    Returns:
        Columns ``setting, model, metric, published, mean, sd, n, n_failed, diff, verdict,
        status``. ``status`` is ``ok`` (at least one successful seed), ``failed`` (only failed
        records) or ``not run``; ``verdict`` is ``OK`` / ``MISMATCH`` (see
        :data:`TOLERANCE_RULE`), ``FAILED`` or ``not run``. Rows of the published table come
        first in its order, then any extra (setting, model) found in the records.
    """
    pub = published if isinstance(published, pd.DataFrame) else paper.table1(published)
    pub_idx = pub.set_index(["setting", "model"])
    res = results_frame(records)
    keys = list(pub_idx.index) + study_order([k for k in zip(res.setting, res.model) if k not in pub_idx.index])
    rows = []
    for setting, model in keys:
        mine = res[(res.setting == setting) & (res.model == model)]
        ok, n_failed = mine[mine.status == "ok"], int((mine.status != "ok").sum())
        for metric in METRICS:
            p = float(pub_idx.loc[(setting, model), metric]) if (setting, model) in pub_idx.index else math.nan
            vals = pd.to_numeric(ok[metric], errors="coerce").dropna()
            n = len(vals)
            mean = float(vals.mean()) if n else math.nan
            sd = float(vals.std(ddof=1)) if n > 1 else math.nan
            status = "ok" if len(ok) else ("failed" if n_failed else "not run")
            v = verdict(p, mean) if status == "ok" else {"failed": "FAILED", "not run": "not run"}[status]
            rows.append({"setting": setting, "model": model, "metric": metric, "published": p, "mean": mean,
                         "sd": sd, "n": n, "n_failed": n_failed, "diff": mean - p, "verdict": v, "status": status})
    return pd.DataFrame(rows)


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

    Each cell shows the published value, ours (mean ± sd, n seeds) and the difference with the
    verdict; the background says OK (green) / MISMATCH (red) / FAILED or not run (grey); a cell
    whose model takes part in a ranking swap for that metric has an orange frame and ``⇅``.
    """
    t = t1[t1.setting == setting]
    swapped = {(r.metric, m) for r in ranking_differences(t).itertuples() for m in r.swapped_models}
    cells, colours = {}, {}
    for r in t.itertuples():
        if r.status == "ok":
            sd = f" ± {fmt(r.sd)}" if np.isfinite(r.sd) else ""
            ours = f"ours {fmt(r.mean)}{sd} <small>(n={r.n})</small>"
            tail = f"Δ {r.diff:+.2f} {r.verdict}" if np.isfinite(r.diff) else r.verdict
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
    return (frame.style.apply(lambda _: css, axis=None).set_caption(SETTING_LABELS.get(setting, setting))
            .set_table_styles([{"selector": "th", "props": "white-space: nowrap; padding: 0.2em 0.5em"}]))


__all__ = ["TOLERANCE_RULE", "TOL_ABS", "TOL_REL", "load_study", "verdict", "table1", "table1_wide", "table1_block",
           "ranking_differences", "table2", "table3", "ap_norm_table"]
