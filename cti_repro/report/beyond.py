"""The "Beyond the paper" chapter: graded metrics for every row, each extension against CLIP-ITA.

Extension results live in ``<results_dir>/extensions/<name>/`` (:mod:`cti_repro.run.extensions`);
Table 1's in ``<results_dir>``. Differences are paired by query: ``extension - CLIP-ITA`` per test
query with the same seed, the mean and a percentile bootstrap 95% interval over queries
(``scipy.stats.bootstrap``, seeded). The category-disjoint split changes the test set, so it
is not paired: it is shown as Table 3 under both splits side by side.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cti_repro.report.common import ok_records, study_order
from cti_repro.report.tables import table3
from cti_repro.results import load_results
from cti_repro.study import GRADED_METRICS, SETTINGS

DIFF_METRICS: tuple[str, ...] = ("P@1", "P@10", "MAP@10", "R-precision", *GRADED_METRICS)


def load_extensions(results_dir: str | Path) -> dict[str, list[dict]]:
    """Result records per extension name under ``<results_dir>/extensions`` (sorted by name)."""
    root = Path(results_dir) / "extensions"
    if not root.is_dir():
        return {}
    return {p.name: load_results(p) for p in sorted(root.iterdir()) if p.is_dir()}


def graded_table(records: list[dict]) -> pd.DataFrame:
    """nDCG@10 and TreeDist@10 (mean, sd over seeds) beside P@10 for every (setting, model)."""
    recs = [r for r in ok_records(records) if "nDCG@10" in (r.get("means") or {})]
    rows = []
    for s, m in study_order((r["setting"], r["model"]) for r in recs):
        runs = [r["means"] for r in recs if r["setting"] == s and r["model"] == m]
        row = {"setting": s, "model": m, "n": len(runs)}
        for k in ("P@10", *GRADED_METRICS):
            v = [x[k] for x in runs if k in x]
            row[k] = float(np.mean(v)) if v else math.nan
            row[f"{k} sd"] = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def bootstrap_mean(diff: np.ndarray, n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of ``diff`` with a percentile bootstrap interval; NaN bounds below 2 values."""
    from scipy.stats import bootstrap

    diff = np.asarray(diff, dtype=float)
    if diff.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(diff.mean())
    if diff.size < 2:
        return mean, math.nan, math.nan
    if np.all(diff == diff[0]):  # no spread: every resample has the same mean (scipy would warn)
        return mean, mean, mean
    ci = bootstrap((diff,), np.mean, n_resamples=n_resamples, confidence_level=level, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return mean, float(ci.low), float(ci.high)


def _per_query(rec: dict, metric: str) -> pd.Series:
    return pd.Series(np.asarray(rec["per_query"][metric], float), index=rec["queries"])


def extension_differences(
    base: list[dict], extensions: dict[str, list[dict]], metrics: tuple[str, ...] = DIFF_METRICS, n_resamples: int = 2000,
) -> pd.DataFrame:
    """Each extension minus the paper's model (same setting and seed), paired over the test queries.

    Extensions whose queries differ from the base's (the category-disjoint split) are left out.

    Returns:
        One row per (extension, setting, metric): base and extension means over the shared
        queries, ``diff`` and its bootstrap 95% interval ``low`` / ``high``, ``queries``.
    """
    base_ok = ok_records(base)
    rows = []
    for name, recs in extensions.items():
        for rec in ok_records(recs):
            if rec.get("beyond_the_paper", {}).get("split.disjoint_categories"):
                continue
            ref = [b for b in base_ok if (b["setting"], b["model"], b.get("seed")) == (rec["setting"], rec["model"], rec.get("seed"))]
            if not ref:
                continue
            for metric in metrics:
                if metric not in rec.get("per_query", {}) or metric not in ref[0].get("per_query", {}):
                    continue
                e, b = _per_query(rec, metric), _per_query(ref[0], metric)
                common = e.index.intersection(b.index)
                mean, lo, hi = bootstrap_mean((e[common] - b[common]).to_numpy(), n_resamples)
                rows.append({"extension": name, "setting": rec["setting"], "model": rec["model"], "metric": metric,
                             "queries": len(common), "base": float(b[common].mean()), "extension value": float(e[common].mean()),
                             "diff": mean, "low": lo, "high": hi})
    return pd.DataFrame(rows, columns=["extension", "setting", "model", "metric", "queries", "base", "extension value",
                                       "diff", "low", "high"])


def difference_summary(diffs: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per (extension, setting), cells ``diff [low, high]`` per metric."""
    if diffs.empty:
        return pd.DataFrame()

    def cell(r: pd.Series) -> str:
        ci = "" if not np.isfinite(r["low"]) else f" [{r['low']:+.2f}, {r['high']:+.2f}]"
        return f"{r['diff']:+.2f}{ci}"

    d = diffs.assign(cell=diffs.apply(cell, axis=1))
    out = d.pivot_table(index=["extension", "setting"], columns="metric", values="cell", aggfunc="first", sort=False)
    out = out.reindex(columns=[m for m in DIFF_METRICS if m in out.columns])
    out.columns.name = None
    # the labels as columns: the book's tables hide the index (report.styled), and a row without
    # its extension and setting cannot be read
    return out.reset_index()


def extension_commands(cfg, profile: str, results_dir: str, config_path: str = "", root=None) -> dict[str, str]:
    """``{"<name>, <setting>": command}``: the ``cti-repro run`` of each configured extension's rows
    (its model, first seed, overrides as ``--set``, into ``<results_dir>/extensions/<name>``, ``--force``)."""
    import shlex

    from cti_repro.report.commands import shown_path

    out = {}
    seed = cfg.seeds[0]
    for name, overrides in cfg.extensions.runs.items():
        for setting in cfg.extensions.settings:
            cli = ["cti-repro", "run", "--setting", setting, "--model", cfg.extensions.model, "--profile", profile,
                   "--seed", str(seed)]
            cli += [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
            cli += ["--config", shown_path(config_path, root)] if config_path else []
            cli += ["--out", shown_path(Path(results_dir) / "extensions" / name, root), "--force"]
            out[f"extension {name}, {setting}"] = " ".join(shlex.quote(a) for a in cli)
    return out


def error_tree_table(base: list[dict], extensions: dict[str, list[dict]], model: str = "CLIP-ITA") -> pd.DataFrame:
    """Table 2's error split per run: wrong top-1 results in the same vs a different tree, d histogram."""
    rows = []
    for name, recs in {"paper (CLIP-ITA)": [r for r in base if r.get("model") == model], **extensions}.items():
        for r in ok_records(recs):
            ea = r.get("error_analysis") or {}
            same, diff = ea.get("same_tree", 0), ea.get("different_tree", 0)
            hist = {int(k): v for k, v in (ea.get("same_tree_depth_diff") or {}).items()}
            rows.append({"run": name, "setting": r["setting"], "seed": r.get("seed"), "queries": len(r.get("queries", [])),
                         "same tree": same, "different tree": diff,
                         "same tree %": 100 * same / (same + diff) if same + diff else math.nan,
                         "|d|=1 %": 100 * (hist.get(1, 0) + hist.get(-1, 0)) / same if same else math.nan,
                         "TreeDist@10": (r.get("means") or {}).get("TreeDist@10", math.nan)})
    df = pd.DataFrame(rows)
    return df.sort_values(["setting", "run", "seed"], key=lambda c: c.map({s: i for i, s in enumerate(SETTINGS)}) if c.name == "setting" else c) if len(df) else df


def table3_splits(base: list[dict], disjoint: list[dict], model: str = "CLIP-ITA") -> pd.DataFrame:
    """Table 3 (ours) under the product split and the category-disjoint split, side by side."""
    parts = []
    for split, recs in (("product split", base), ("category-disjoint", disjoint)):
        t = table3(recs, model)
        t = t[t["source"] == "ours"].drop(columns="source")
        parts.append(t.assign(split=split))
    out = pd.concat(parts, ignore_index=True)
    return out[["split", *[c for c in out.columns if c != "split"]]]


__all__ = ["DIFF_METRICS", "load_extensions", "graded_table", "bootstrap_mean", "extension_differences",
           "difference_summary", "extension_commands", "error_tree_table", "table3_splits"]
