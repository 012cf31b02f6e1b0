"""The "Beyond the paper" chapter: graded metrics for every row, each extension against CLIP-ITA.

Extension results live in ``<results_dir>/extensions/<name>/`` (:mod:`cti_repro.run.extensions`);
Table 1's in ``<results_dir>``. Differences are paired by query and seed: ``extension - CLIP-ITA``
per test query with the same seed, tested against query and seed sampling
(:func:`cti_repro.report.stats.seed_query_test`, seeds paired) with a 95% interval; Holm's
correction runs over the page's whole family of differences. The category-disjoint split changes
the test set, so it is not paired: it is shown as Table 3 under both splits side by side.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from cti_repro.report.common import ok_records, study_order
from cti_repro.report.stats import ALPHA, holm_rows, matrix_test, score_matrix
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


def extensions_line(runs: dict[str, dict]) -> str:
    """The page's list of configured extensions as one HTML paragraph, every name and value escaped.

    Names and override values come from ``_config.yml`` or ``--set``: printed through Markdown, a
    name holding a MyST role (``{raw}`...```) would reach the page as a live tag.
    """
    items = [f"<b>{html.escape(str(name))}</b> <code>{html.escape(' '.join(f'{k}={v}' for k, v in spec.items()))}</code>"
             for name, spec in runs.items()]
    return f"<p>Extensions of this profile (dotted overrides of the config): {', '.join(items) or 'none configured'}.</p>"


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


def extension_differences(
    base: list[dict], extensions: dict[str, list[dict]], metrics: tuple[str, ...] = DIFF_METRICS, alpha: float = ALPHA,
) -> pd.DataFrame:
    """Each extension minus the paper's model (same setting and seeds), over the seeds x queries matrix.

    Extensions whose queries differ from the base's (the category-disjoint split) are left out.

    Returns:
        One row per (extension, setting, model, metric): ``seeds`` and ``queries`` paired, base
        and extension means over them, ``diff`` with its 95% interval ``low`` / ``high``, ``p``,
        ``p_holm`` (Holm over every row of the table, one family), ``significant`` and a ``note``
        (e.g. one paired seed: the test holds query sampling only).
    """
    base_ok = ok_records(base)
    rows = []
    for name, recs in extensions.items():
        paired = [r for r in ok_records(recs) if not (r.get("beyond_the_paper") or {}).get("split.disjoint_categories")]
        for setting, model in study_order((r["setting"], r["model"]) for r in paired):
            for metric in metrics:
                e, b = score_matrix(paired, setting, model, metric), score_matrix(base_ok, setting, model, metric)
                if e.empty or b.empty or not len(e.index.intersection(b.index)):
                    continue
                res = matrix_test(e, b, paired_seeds=True)
                rows.append({"extension": name, "setting": setting, "model": model, "metric": metric,
                             "seeds": len(e.index.intersection(b.index)), "queries": res["n"], "base": res["mean_b"],
                             "extension value": res["mean_a"], "diff": res["diff"], "low": res["lo"],
                             "high": res["hi"], "p": res["p"], "note": res["note"]})
    holm_rows(rows, alpha)
    return pd.DataFrame(rows, columns=["extension", "setting", "model", "metric", "seeds", "queries", "base",
                                       "extension value", "diff", "low", "high", "p", "p_holm", "significant", "note"])


TREE_CONTROLS: dict[str, str] = {"tree_soft": "same_label"}  # extension -> its control run (same-label positives only)


def tree_effects(extensions: dict[str, list[dict]], metrics: tuple[str, ...] = DIFF_METRICS,
                 alpha: float = ALPHA) -> pd.DataFrame:
    """The tree's own effect: each tree extension minus its control, paired by query and seed.

    ``tree_soft`` changes two things at once: same-label pairs of a batch become positives (plain
    InfoNCE counts them as negatives) and tree relatives get soft targets. Its control
    ``same_label`` (``tree_soft`` with ``loss.tree_decay: 0``: weight 0<sup>0</sup> = 1 for the same
    label, 0 for every relative) has only the first, so ``tree_soft - same_label`` is the second
    alone. Rows as :func:`extension_differences`, ``extension`` named ``"tree_soft - same_label"``;
    empty when either run is missing.
    """
    parts = [extension_differences(extensions[control], {f"{tree} - {control}": extensions[tree]}, metrics, alpha)
             for tree, control in TREE_CONTROLS.items() if tree in extensions and control in extensions]
    return pd.concat(parts, ignore_index=True) if parts else extension_differences([], {}, metrics)


def holm_over_page(*tables: pd.DataFrame, alpha: float = ALPHA) -> tuple[pd.DataFrame, ...]:
    """The tables of differences of one page with ``p_holm`` / ``significant`` redone over all their
    rows as one family (the beyond page shows the extensions and the tree's own effect: one family)."""
    rows = [r for t in tables for r in t.to_dict("records")]
    holm_rows(rows, alpha)
    out, start = [], 0
    for t in tables:
        out.append(pd.DataFrame(rows[start:start + len(t)], columns=t.columns))
        start += len(t)
    return tuple(out)


def difference_summary(diffs: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per (extension, setting), cells ``diff [low, high]`` per metric, `` *``
    when the Holm-adjusted p-value over the page's family is below 0.05.

    ``extension`` and ``setting`` are columns, not the index: the pages' Styler hides the index, and
    a table of differences without the names of what differs says nothing."""
    if diffs.empty:
        return pd.DataFrame()

    def cell(r: pd.Series) -> str:
        ci = "" if not np.isfinite(r["low"]) else f" [{r['low']:+.2f}, {r['high']:+.2f}]"
        return f"{r['diff']:+.2f}{ci}" + (" *" if r["significant"] else "")

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


__all__ = ["DIFF_METRICS", "extensions_line", "load_extensions", "graded_table", "extension_differences", "tree_effects",
           "holm_over_page", "difference_summary", "extension_commands", "error_tree_table", "table3_splits"]
