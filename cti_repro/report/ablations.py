"""The sensitivity study's page: each ablation variant's difference from the default, with intervals.

A variant's rows live in ``<results_dir>/ablations/<variant>/`` (:mod:`cti_repro.run.ablations`);
the default is the study's own rows in ``<results_dir>``. For every (variant, setting, model,
metric) the difference variant − default is taken query by query and seed by seed (the same seed
trains from the same initialisation in both), and its mean is tested against query and seed
sampling (:func:`cti_repro.report.stats.seed_query_test`, paired seeds) with a 95% interval;
Holm's correction runs over the page's whole family (every variant, setting, model and metric),
and a star marks a Holm-adjusted p-value below 0.05.

Example:
    >>> from cti_repro.report import ablations
    >>> t = ablations.ablation_table("runs/smoke")
    >>> ablations.ablation_figure(t)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cti_repro.report.common import empty_figure, ok_records, study_order
from cti_repro.report.stats import ALPHA, holm_rows, matrix_test, score_matrix
from cti_repro.results import load_results
from cti_repro.study import METRICS, SETTING_LABELS, SETTINGS

COLUMNS = ["variant", "setting", "model", "metric", "default", "variant_mean", "diff", "ci_lo", "ci_hi",
           "p", "p_holm", "significant", "n_seeds", "n_queries", "overrides"]


def variant_records(results_dir: str | Path) -> dict[str, list[dict]]:
    """``{variant: its successful records}`` for every folder under ``<results_dir>/ablations``."""
    root = Path(results_dir) / "ablations"
    if not root.is_dir():
        return {}
    return {d.name: ok_records(load_results(d)) for d in sorted(root.iterdir()) if d.is_dir()}


def _overrides(records: list[dict], default: dict) -> str:
    """The config fields where a variant's records differ from the default's (``loss.tau=0.1``)."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in (d or {}).items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(records[0].get("config") or {}), flat(default.get("config") or {}) if default else {}
    skip = ("root", "results_dir", "cache_dir", "book_dir", "profile")
    return ", ".join(f"{k}={a[k]}" for k in sorted(a) if k not in skip and b.get(k, a[k]) != a[k])


def ablation_table(results_dir: str | Path, metrics: Sequence[str] = METRICS, alpha: float = ALPHA) -> pd.DataFrame:
    """Every variant's difference from the default, per setting, model and metric.

    Returns:
        Columns :data:`COLUMNS`: ``default`` and ``variant_mean`` (mean over the paired seeds and
        queries, percent), ``diff`` = variant − default with its 95% interval ``ci_lo, ci_hi``
        (:func:`cti_repro.report.stats.seed_query_test` on the seed-paired difference), ``p``,
        ``p_holm`` (Holm over the whole table, one family), ``significant`` (``p_holm < alpha``),
        the paired ``n_seeds`` and ``n_queries``, and ``overrides`` (the config fields that differ).
        Empty when no variant has run.
    """
    default = ok_records(load_results(results_dir))
    rows = []
    for name, recs in variant_records(results_dir).items():
        for setting, model in study_order((r["setting"], r["model"]) for r in recs):
            base = [r for r in default if r.get("setting") == setting and r.get("model") == model]
            mine = [r for r in recs if r.get("setting") == setting and r.get("model") == model]
            for metric in metrics:
                a, b = score_matrix(mine, setting, model, metric), score_matrix(base, setting, model, metric)
                res = matrix_test(a, b, paired_seeds=True)
                n_seeds = len(a.index.intersection(b.index)) if len(a) and len(b) else 0
                rows.append({"variant": name, "setting": setting, "model": model, "metric": metric,
                             "default": res["mean_b"], "variant_mean": res["mean_a"], "diff": res["diff"],
                             "ci_lo": res["lo"], "ci_hi": res["hi"], "p": res["p"],
                             "n_seeds": n_seeds, "n_queries": res["n"],
                             "overrides": _overrides(mine, base[0] if base else {})})
    holm_rows(rows, alpha)
    return pd.DataFrame(rows, columns=COLUMNS)


def ablation_wide(t: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, model, metric), one column per setting: ``"+3.21 [+1.0, +5.4] *"``
    (the star: Holm-adjusted p-value over the page's family below 0.05, the ``significant`` column)."""
    if t.empty:
        return pd.DataFrame(columns=["variant", "model", "metric", *SETTINGS])
    cell = t.apply(lambda r: "—" if not np.isfinite(r["diff"]) else
                   f"{r['diff']:+.2f}" + (f" [{r.ci_lo:+.2f}, {r.ci_hi:+.2f}]" if np.isfinite(r.ci_lo) else "")
                   + (" *" if r.significant else ""),
                   axis=1)
    wide = t.assign(cell=cell).pivot_table(index=["variant", "model", "metric"], columns="setting", values="cell",
                                           aggfunc="first", sort=False)
    wide = wide.reindex(columns=[s for s in SETTINGS if s in wide.columns]).rename(columns=SETTING_LABELS)
    wide.columns.name = None
    return wide.reset_index()


def variant_cost(models: Sequence[str], seeds: int, records: list[dict]) -> tuple[int, float | None]:
    """``(rows, seconds)`` a variant of ``models`` costs: one row per model, setting and seed; the
    seconds summed from this build's default rows of the same (setting, model) (None if none ran)."""
    rows, secs = len(models) * len(SETTINGS) * seeds, 0.0
    for model in models:
        for setting in SETTINGS:
            times = [float(r["wall_time_s"]) for r in ok_records(records) if r.get("wall_time_s")
                     and (r.get("setting"), r.get("model")) == (setting, model)]
            if not times:
                return rows, None
            secs += seeds * sum(times) / len(times)
    return rows, secs


def variants_table(variants: dict, default_set: Sequence[str], ran: set[str], profile: str, seeds: int,
                   records: list[dict], config_arg: str = "") -> pd.DataFrame:
    """Every configured variant: overrides, models, in the default set, whether it ran here, and
    for one that did not, the command that runs it and its cost (rows, and minutes estimated from
    this build's default rows; the default rows themselves are reused, not rerun).

    ``config_arg`` is the ``--config`` value the commands name ("" for ``./_config.yml``).
    """
    def cost(v) -> str:
        rows, secs = variant_cost(v.models, seeds, records)
        return f"{rows} rows" + (f", ~{max(1, round(secs / 60))} min" if secs is not None else "")

    conf = f" --config {config_arg}" if config_arg else ""
    return pd.DataFrame([{"variant": v.name, "overrides": ", ".join(f"{k}={val}" for k, val in v.overrides.items()),
                          "models": ", ".join(v.models), "default set": "yes" if v.name in default_set else "no",
                          "run here": "yes" if v.name in ran else "no",
                          "command (not run here)": "" if v.name in ran else
                          f"cti-repro reproduce --profile {profile}{conf} --ablations {v.name}",
                          "cost": "" if v.name in ran else cost(v)}
                         for v in variants.values()])


def ablation_figure(t: pd.DataFrame, metrics: Sequence[str] = ("P@1", "R-precision")) -> Figure:
    """A forest plot: per setting, each variant's difference from the default (points) and its 95%
    interval (bars), one marker per metric; the vertical line is no difference."""
    t = t[t.metric.isin(metrics)] if len(t) else t
    t = t[np.isfinite(t["diff"].astype(float))] if len(t) else t
    if t.empty:
        return empty_figure("No ablation variant has run yet (cti-repro reproduce --ablations).")
    labels = list(dict.fromkeys(f"{v} ({m})" for v, m in zip(t.variant, t.model)))
    settings = [s for s in SETTINGS if s in set(t.setting)]
    # the article column's width (7.8 in at 100 dpi, shown 1:1): labels and ticks stay at 9 pt on the page
    fig = Figure(figsize=(7.8, 0.3 * len(labels) * len(metrics) + 1.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(settings), sharey=True, squeeze=False).ravel())
    markers = dict(zip(metrics, ("o", "s", "D", "^", "v", "P")))
    step = 0.8 / max(1, len(metrics))
    for ax, s in zip(axes, settings):
        for j, metric in enumerate(metrics):
            g = t[(t.setting == s) & (t.metric == metric)]
            y = np.array([labels.index(f"{v} ({m})") for v, m in zip(g.variant, g.model)]) + (j - (len(metrics) - 1) / 2) * step
            ax.errorbar(g["diff"], y, xerr=[g["diff"] - g.ci_lo, g.ci_hi - g["diff"]], fmt=markers[metric], capsize=3,
                        label=metric)
        ax.axvline(0, color="0.4", lw=1)
        ax.set_title(SETTING_LABELS.get(s, s), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(range(len(labels)), labels, fontsize=9)
    axes[0].invert_yaxis()
    fig.supxlabel("variant − default (points)", fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=len(metrics), fontsize=9,
               frameon=False)
    return fig


__all__ = ["variant_cost", "variants_table", "ablation_table", "ablation_wide", "ablation_figure", "variant_records", "COLUMNS"]
