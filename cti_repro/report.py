"""Tables for the report book: the paper's Tables 1-3 beside ours, AP@k normalisations, tests.

Every function takes the result records of a study (:func:`load_study`) and returns a pandas
DataFrame; the figures live in :mod:`cti_repro.report_figures` and are re-exported here. Numbers
are percent, as in the paper. Reproduced values are the mean over seeds of the per-run means;
``sd`` is the sample standard deviation over seeds (NaN with one seed).

Example:
    >>> from cti_repro import report
    >>> records = report.load_study("runs/smoke")
    >>> t1 = report.table1(records)
    >>> report.table1_wide(t1).head()
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cti_repro.report_figures import _fmt, gallery, published_vs_reproduced_figure, styled, table1_block, training_curves
from cti_repro.report_stats import holm, paired_tests, per_query_scores, significance, significance_summary
from cti_repro.results import METRICS, MODELS, load_results, published_table, results_frame

SETTINGS: tuple[str, ...] = ("all", "most_general", "most_specific")
SETTING_LABELS = {"all": "All categories", "most_general": "Most general category",
                  "most_specific": "Most specific category"}

# ---- the tolerance of the OK / MISMATCH verdict ------------------------------------------------
TOL_ABS = 2.0   # percentage points
TOL_REL = 0.10  # share of the published value
TOLERANCE_RULE = (f"OK if |reproduced − published| ≤ max({TOL_ABS:g} points, {TOL_REL:.0%} of the published value), "
                  "else MISMATCH; reproduced = mean over seeds")
DEMO_WARNING = ("Pipeline demonstration on synthetic data / random weights — "
                "these numbers are NOT a reproduction of the paper.")

# ---- published numbers of Tables 2 and 3 (not results) -----------------------------------------
# Hendriksen et al., "Extending CLIP for Category-to-image Retrieval in E-commerce", ECIR 2022,
# LNCS 13185, pp. 289-303, doi:10.1007/978-3-030-99736-6_20; Table 2 (CLIP-ITA's incorrect
# predictions in the same / a different category tree) and Table 3 (CLIP-ITA on seen / unseen
# categories), as transcribed in PAPER_NOTES.md section 5. Table 2's total row says 1,786
# same-tree errors although its rows add up to 1,784; the row values are kept.
PAPER_TABLE2: dict[str, dict[str, int]] = {
    "all": {"same_tree": 1655, "different_tree": 639},
    "most_general": {"same_tree": 2, "different_tree": 21},
    "most_specific": {"same_tree": 127, "different_tree": 1011},
}
PAPER_TABLE2_TOTAL = {"same_tree": 1786, "different_tree": 1671}  # as printed
# Shares of same-tree errors stated in the text of section 5 (d = depth(predicted) - depth(target)).
PAPER_TABLE2_DEPTH = {"all": {"d>0": 92.0}, "most_specific": {"d=-1": 68.0, "d<0": 100.0}}
PAPER_TABLE3: dict[tuple[str, str], dict[str, float]] = {
    (s, sub): dict(zip(METRICS, v)) for (s, sub), v in {
        ("all", "unseen"): (13.30, 18.56, 15.55, 19.70, 19.65, 18.52),
        ("all", "seen"): (10.48, 13.95, 14.08, 21.65, 21.65, 14.07),
        ("most_general", "unseen"): (0.00, 0.00, 0.00, 0.00, 0.00, 0.00),
        ("most_general", "seen"): (19.23, 20.01, 17.31, 20.41, 20.01, 15.73),
        ("most_specific", "unseen"): (27.27, 26.44, 26.44, 27.92, 27.92, 26.45),
        ("most_specific", "seen"): (47.83, 43.09, 42.14, 52.41, 51.89, 41.58),
    }.items()
}
AP_NORM_LABELS = {"hits": "hits", "min_k_R": "min(k,R)", "R": "R"}


def load_study(results_dir: str | Path | Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every result record under one or more results folders (failed rows included)."""
    dirs = [results_dir] if isinstance(results_dir, (str, Path)) else list(results_dir)
    return [r for d in dirs for r in load_results(d)]


def _ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status", "ok") == "ok"]


def _order(keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    def rank(k: tuple[str, str]) -> tuple:
        s, m = k
        return (SETTINGS.index(s) if s in SETTINGS else 99, s,
                MODELS.index(m) if m in MODELS else 99, m)
    return sorted(set(keys), key=rank)


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
        published: the published table (default: the packaged ``published_results.csv``).

    Returns:
        Columns ``setting, model, metric, published, mean, sd, n, n_failed, diff, verdict,
        status``. ``status`` is ``ok`` (at least one successful seed), ``failed`` (only failed
        records) or ``not run``; ``verdict`` is ``OK`` / ``MISMATCH`` (see
        :data:`TOLERANCE_RULE`), ``FAILED`` or ``not run``. Rows of the published table come
        first in its order, then any extra (setting, model) found in the records.
    """
    pub = published if isinstance(published, pd.DataFrame) else published_table(published)
    pub_idx = pub.set_index(["setting", "model"])
    res = results_frame(records)
    keys = list(pub_idx.index) + _order([k for k in zip(res.setting, res.model) if k not in pub_idx.index])
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
        ours = {"failed": "FAILED", "not run": "not run"}.get(r.status, _fmt(r["mean"]))
        return f"{_fmt(r.published)} / {ours}"

    t = t1.assign(cell=t1.apply(cell, axis=1))
    wide = t.pivot_table(index=["setting", "model"], columns="metric", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=[m for m in METRICS if m in wide.columns])
    wide.columns.name = None
    return wide.reset_index()


def _strict_order(values: dict[str, float]) -> str:
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
        rows.append({"setting": setting, "metric": metric, "paper_order": _strict_order(pub),
                     "our_order": _strict_order(ours),
                     "swapped": ", ".join(f"{a} ↔ {b}" for a, b in swaps),
                     "swapped_models": sorted({m for s in swaps for m in s}),
                     "differs": bool(swaps), "kendall_tau": tau})
    return pd.DataFrame(rows, columns=["setting", "metric", "paper_order", "our_order", "swapped",
                                       "swapped_models", "differs", "kendall_tau"])


# ---- provenance ------------------------------------------------------------------------------
def _uniq(values) -> list:
    out = []
    for v in values:
        if v is not None and v not in out:
            out.append(v)
    return out


def provenance(records: list[dict]) -> dict[str, Any]:
    """Where the numbers of a study come from: data, encoders, seeds, commits, dates, hardware.

    ``demonstration`` is true if any record is marked as a demonstration or any encoder has
    random (not pretrained) weights.
    """
    ok = _ok(records)
    encoders, random_weights = [], False
    for r in ok:
        for role, e in (r.get("encoders") or {}).items():
            desc = f"{role}: {e.get('name')} ({e.get('weights')}; pretrained: {'yes' if e.get('pretrained') else 'NO'})"
            encoders.append(desc)
            random_weights |= not e.get("pretrained", True)

    def source(r: dict) -> str:
        d, cfg = r.get("data") or {}, (r.get("config") or {}).get("data", {})
        if d.get("source") == "xmarket":
            return f"XMarket ({cfg.get('xmarket', {}).get('market', '?')} market)"
        return {"synthetic": "synthetic catalogue (generated offline)"}.get(d.get("source"), str(d.get("source")))

    def hw(r: dict) -> str:
        d = r.get("device") or {}
        return f"{d.get('device', '?')}: {d.get('gpu') or d.get('processor', '?')}, {d.get('cpu_count', '?')} CPU cores"

    dates = sorted(r["finished_at"] for r in records if r.get("finished_at"))
    return {
        "records": len(records), "ok": len(ok), "failed": len(records) - len(ok),
        "profiles": _uniq(r.get("profile") for r in records),
        "data_source": _uniq(source(r) for r in ok),
        "products": _uniq((r.get("data") or {}).get("products") for r in ok),
        "queries": {s: _uniq((r.get("data") or {}).get("test_queries") for r in ok if r.get("setting") == s)
                    for s in SETTINGS},
        "encoders": sorted(_uniq(encoders)),
        "random_weights": random_weights,
        "seeds": sorted(_uniq(r.get("seed") for r in records)),
        "git_commits": _uniq(r.get("git_commit") for r in ok),
        "dates": (dates[0], dates[-1]) if dates else None,
        "results_dirs": _uniq(str(Path(r["_path"]).parent.parent) for r in records if r.get("_path")),
        "hardware": _uniq(hw(r) for r in ok),
        "config_hashes": _uniq(r.get("config_hash") for r in ok),
        "data_fingerprints": _uniq(r.get("data_fingerprint") for r in ok),
        "demonstration": any(r.get("demonstration") for r in records) or random_weights,
    }


def provenance_html(records: list[dict]) -> str:
    """The provenance box at the top of every results page (an admonition; inline colours too)."""
    p = provenance(records)
    esc = lambda x: html.escape(str(x))  # noqa: E731
    kind, colour = ("warning", "#f0b37e") if p["demonstration"] or not records else ("note", "#6ab0de")
    lines = []
    if p["demonstration"]:
        lines.append(f'<p style="font-size:1.05em"><strong>{esc(DEMO_WARNING)}</strong></p>')
    if not records:
        lines.append("<p><strong>No result records were found</strong>: every row below reads “not run”.</p>")
    queries = "; ".join(f"{SETTING_LABELS[s].lower()}: {', '.join(map(str, q))}" for s, q in p["queries"].items() if q)
    items = [
        ("Data", ", ".join(p["data_source"]) or "—"),
        ("Catalogue", ", ".join(f"{n:,} products" for n in p["products"]) + (f" ({queries} test queries)" if queries else "")),
        ("Encoders", "<br>".join(esc(e) for e in p["encoders"]) or "—"),
        ("Seeds", ", ".join(map(str, p["seeds"])) or "—"),
        ("Runs", f"{p['ok']} ok, {p['failed']} failed (profile {', '.join(map(str, p['profiles'])) or '—'})"),
        ("Git commit", ", ".join(p["git_commits"][:3]) + (f" (+{len(p['git_commits']) - 3} more)"
                                                         if len(p["git_commits"]) > 3 else "") or "—"),
        ("Date", " … ".join(dict.fromkeys(p["dates"])) if p["dates"] else "—"),
        ("Hardware", "; ".join(p["hardware"]) or "—"),
        ("Results folder", ", ".join(p["results_dirs"]) or "—"),
    ]
    if len(p["config_hashes"]) > 1 or len(p["data_fingerprints"]) > 1:
        items.append(("Caution", f"{len(p['config_hashes'])} configs / {len(p['data_fingerprints'])} catalogues "
                                 "are mixed in these results"))
    rows = "".join(f'<tr><th style="text-align:left;padding-right:1em;vertical-align:top">{k}</th>'
                   f"<td style='text-align:left'>{v if k == 'Encoders' else esc(v)}</td></tr>" for k, v in items)
    return (f'<div class="admonition {kind}" style="border-left:4px solid {colour};padding:.4em .8em;margin-bottom:1em">'
            f'<p class="admonition-title" style="font-weight:bold">Provenance</p>{"".join(lines)}'
            f'<table style="font-size:0.9em;border:none">{rows}</table></div>')


# ---- Tables 2 and 3, AP@k normalisations --------------------------------------------------------
def _by(records: list[dict], model: str, setting: str) -> list[dict]:
    return sorted((r for r in _ok(records) if r.get("model") == model and r.get("setting") == setting),
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
        paper = PAPER_TABLE2_TOTAL if s == "total" else PAPER_TABLE2[s]
        queries = [np.mean([len(r.get("queries", [])) for r in rs]) for rs in per_setting if rs]
        rows.append({
            "setting": s, "n": len(runs), "queries": float(np.sum(queries)) if queries else math.nan,
            "same tree": same, "different tree": diff, "same tree %": pct(same, same + diff),
            "d>0 %": pct(sum(c for d, c in hist.items() if d > 0), tot),
            "d<0 %": pct(sum(c for d, c in hist.items() if d < 0), tot),
            "d=-1 %": pct(hist.get(-1, 0), tot),
            "paper same tree": paper["same_tree"], "paper different tree": paper["different_tree"],
            "paper same tree %": pct(paper["same_tree"], paper["same_tree"] + paper["different_tree"]),
        })
    return pd.DataFrame(rows)


def table3(records: list[dict], model: str = "CLIP-ITA", published: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's Table 3 beside ours: CLIP-ITA on seen vs unseen test categories.

    Rows per setting: ``overall`` (Table 1), ``unseen``, ``seen``; each once from the paper and
    once ours (mean over seeds; NaN where a subset is empty). ``queries`` is our subset size.
    """
    pub = (published if published is not None else published_table()).set_index(["setting", "model"])
    rows = []
    for s in SETTINGS:
        runs = _by(records, model, s)
        for sub in ("overall", "unseen", "seen"):
            if sub == "overall":
                paper = pub.loc[(s, model), list(METRICS)].to_dict() if (s, model) in pub.index else {}
                ours = [r.get("means") or {} for r in runs]
                nq = [len(r.get("queries", [])) for r in runs]
            else:
                paper = PAPER_TABLE3[(s, sub)]
                ours = [(r.get("subsets") or {}).get(sub) or {} for r in runs]
                nq = [(r.get("subsets") or {}).get(f"n_{sub}", 0) for r in runs]
            rows.append({"setting": s, "subset": sub, "source": "paper", "queries": math.nan, "n": math.nan,
                         **{m: paper.get(m, math.nan) for m in METRICS}})
            vals = {m: [v for o in ours if (v := o.get(m)) is not None and np.isfinite(v)] for m in METRICS}
            rows.append({"setting": s, "subset": sub, "source": "ours", "queries": np.mean(nq) if nq else math.nan,
                         "n": len(runs), **{m: np.mean(v) if v else math.nan for m, v in vals.items()}})
    return pd.DataFrame(rows)


def ap_norm_table(records: list[dict], published: pd.DataFrame | None = None) -> pd.DataFrame:
    """MAP@5 / MAP@10 under the three AP@k normalisations (mean over seeds) beside the paper.

    ``hits``: divide by the relevant items in the top k (the package default); ``min(k, R)``;
    ``R``: by all relevant items (trec_eval ``map_cut``).
    """
    pub = (published if published is not None else published_table()).set_index(["setting", "model"])
    keys = _order([(r["setting"], r["model"]) for r in _ok(records) if r.get("means_by_ap_norm")])
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


__all__ = ["TOLERANCE_RULE", "DEMO_WARNING", "PAPER_TABLE2", "PAPER_TABLE3", "load_study", "verdict", "table1",
           "table1_wide", "table1_block", "styled", "ranking_differences", "provenance", "provenance_html", "table2",
           "table3", "ap_norm_table", "significance", "significance_summary", "holm", "paired_tests",
           "per_query_scores", "training_curves", "gallery", "published_vs_reproduced_figure"]
