"""Figures (matplotlib + seaborn) and styled HTML tables (pandas Styler) for the report book.

No backend is forced: figures are plain ``Figure`` objects that notebooks show inline (with the
inline backend active) and scripts can ``fig.savefig``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cti_repro.report.common import empty_figure, ok_records
from cti_repro.report.styles import MODEL_COLOURS, OK_COLOUR, WRONG_COLOUR, mpl_text
from cti_repro.study import METRICS, MODELS, SETTING_LABELS, SETTINGS, TRAINED



def training_curves(records: list[dict]) -> Figure:
    """Training (solid) and validation (dashed) loss per epoch: rows = settings, columns =
    CLIP-I / CLIP-IA / CLIP-ITA, one colour per seed; a dot marks the epoch whose weights were kept.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    runs = [r for r in ok_records(records) if r.get("model") in TRAINED and (r.get("training") or {}).get("history")]
    settings = [s for s in SETTINGS if any(r.get("setting") == s for r in runs)]
    settings += sorted({r["setting"] for r in runs} - set(settings))
    if not settings:
        return empty_figure("No training history in these results (CLIP-I / -IA / -ITA not run).")
    seeds = sorted({r.get("seed", 0) for r in runs})
    colours = dict(zip(seeds, plt.get_cmap("tab10").colors * 10))
    # 7.8 in at 100 dpi: the article column (cti_repro.run.notebook_images.DISPLAY_WIDTH), shown 1:1
    fig = Figure(figsize=(2.6 * len(TRAINED), 2.4 * len(settings) + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(settings), len(TRAINED), sharey="row", squeeze=False))
    for i, s in enumerate(settings):
        for j, m in enumerate(TRAINED):
            ax = axes[i, j]
            mine = sorted((r for r in runs if r["setting"] == s and r["model"] == m), key=lambda r: r.get("seed", 0))
            for r in mine:
                h = pd.DataFrame(r["training"]["history"])
                c = colours[r.get("seed", 0)]
                ax.plot(h.epoch, h.train_loss, color=c, lw=1.5)
                ax.plot(h.epoch, h.val_loss, color=c, lw=1.5, ls="--")
                best = h[h.epoch == r["training"].get("best_epoch")]
                ax.plot(best.epoch, best.val_loss, "o", color=c, ms=5)
            if not mine:
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="grey")
            ax.set_title(f"{m} — {SETTING_LABELS.get(s, s).lower()}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if i == len(settings) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel("loss (eq. 9)")
    handles = [Line2D([], [], color="k", lw=1.5, label="training"), Line2D([], [], color="k", ls="--", label="validation"),
               Line2D([], [], color="k", marker="o", ls="", label="kept (best val.)")]
    handles += [Line2D([], [], color=colours[s], lw=3, label=f"seed {s}") for s in seeds]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    return fig


def default_gallery_queries(relevant_counts: dict[str, int], n: int = 3) -> list[str]:
    """The ``n`` queries with the most relevant test products (ties: alphabetical)."""
    return [q for q, _ in sorted(relevant_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _thumbnail(catalogue, i: int | None, size: int = 160) -> np.ndarray | None:
    from PIL import Image

    path = catalogue.image_path(i) if i is not None else None
    if path is None or not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            return np.asarray(im)
    except OSError:
        return None


def gallery(records: list[dict], catalogue: Any, setting: str, queries: list[str] | None = None, k: int = 5,
            models: list[str] | None = None, n_queries: int = 2) -> Figure:
    """Top-``k`` retrieved product images per model for a few category queries of ``setting``.

    A green frame and ``✓`` mark a relevant product (its category label in this setting equals
    the query), a red frame and ``✗`` a wrong one; below each image are the product's title (what
    BM25 and MPNet rank on, shortened) and its own category label.
    Rankings come from each model's lowest successful seed (``top10`` of the record).

    Args:
        records: result records.
        catalogue: the study's :class:`~cti_repro.data.catalogue.Catalogue` (for images, labels).
        setting: ``all``, ``most_general`` or ``most_specific``.
        queries: category names (default: the ``n_queries`` with the most relevant test products).
        k: images per model (at most 10).
        models: models to show (default: every model with a result, in Table 1 order).

    Returns:
        The Figure; ``fig.cti_gallery`` lists one dict per image (query, model, seed, rank,
        product_id, label, relevant), and ``fig.cti_queries`` the queries shown.
    """
    from cti_repro.config import SplitConfig
    from cti_repro.data.pairs import build_setting

    runs = {}
    for r in sorted(ok_records(records), key=lambda r: r.get("seed", 0)):
        if r.get("setting") == setting and r.get("top10") and r.get("model") not in runs:
            runs[r["model"]] = r
    models = [m for m in (models or [*MODELS, *sorted(set(runs) - set(MODELS))]) if m in runs]
    if not models:
        fig = empty_figure(f"No rankings for {SETTING_LABELS.get(setting, setting).lower()} in these results.")
        fig.cti_gallery, fig.cti_queries = [], []
        return fig
    split = SplitConfig(**((runs[models[0]].get("config") or {}).get("split") or {}))
    data = build_setting(catalogue, setting, split)
    index = {pid: i for i, pid in enumerate(catalogue.product_ids)}
    test_labels = pd.Series(data.labels[data.candidates]).value_counts().to_dict()
    if queries is None:
        known = set.intersection(*(set(runs[m]["top10"]) for m in models))
        queries = default_gallery_queries({q: n for q, n in test_labels.items() if q in known}, n_queries)
    k = min(k, 10)
    titles = catalogue.titles
    fig = Figure(figsize=(1.5 * k + 1.2, (1.55 * len(models) + 0.4) * max(1, len(queries))), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(max(1, len(queries)), 1, squeeze=False).ravel())
    info = []
    for sf, q in zip(subfigs, queries):
        n_rel = int(test_labels.get(q, 0))
        plural = "s" if n_rel != 1 else ""
        sf.suptitle(f"Query “{mpl_text(q)}” — {n_rel} relevant test product{plural}", fontsize=11, fontweight="bold")
        axes = sf.subplots(len(models), k, squeeze=False)
        for row, m in enumerate(models):
            ids = runs[m]["top10"].get(q, [])[:k]
            for col in range(k):
                ax = axes[row, col]
                ax.set_xticks([]), ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(m, fontsize=10, fontweight="bold")
                if col >= len(ids):
                    ax.set_title("—", fontsize=8)
                    for sp in ax.spines.values():
                        sp.set_visible(False)
                    continue
                pid = ids[col]
                i = index.get(pid)
                label = str(data.labels[i]) if i is not None else "?"
                rel = label == q
                img = _thumbnail(catalogue, i)
                if img is None:
                    ax.set_facecolor("#dddddd")
                    ax.text(0.5, 0.5, "no image", ha="center", va="center", fontsize=7, transform=ax.transAxes)
                else:
                    ax.imshow(img)
                for sp in ax.spines.values():
                    sp.set_edgecolor(OK_COLOUR if rel else WRONG_COLOUR)
                    sp.set_linewidth(4)
                ax.set_title(f"{col + 1} {'✓' if rel else '✗'}", fontsize=9, color=OK_COLOUR if rel else WRONG_COLOUR)
                title = str(titles[i]) if i is not None else ""
                short = lambda t, n: t if len(t) <= n else t[: n - 1] + "…"  # noqa: E731
                ax.set_xlabel(mpl_text(f"{short(title, 24)}\n[{short(label, 20)}]"), fontsize=7, linespacing=1.1)
                info.append({"query": q, "model": m, "seed": runs[m].get("seed"), "rank": col + 1, "product_id": pid,
                             "label": label, "relevant": rel})
    fig.cti_gallery, fig.cti_queries = info, list(queries)
    return fig


def published_vs_reproduced_figure(t1: pd.DataFrame) -> Figure:
    """Reproduced (mean, bars: the verdict's consistency range) against published, one panel per setting.

    Colour = model, marker = metric; the diagonal is perfect agreement: a bar that crosses it is a
    *consistent* or *inconclusive* cell (:data:`cti_repro.report.VERDICT_RULE`; ``range_lo, range_hi``,
    else the 95% interval ``ci_lo, ci_hi`` of a table without them). Failed and missing rows are
    counted in the panel title.
    """
    import seaborn as sns

    settings = [s for s in SETTINGS if s in set(t1.setting)] + sorted(set(t1.setting) - set(SETTINGS))
    if not settings:
        return empty_figure("No rows to plot.")
    models = [m for m in MODELS if m in set(t1.model)] + sorted(set(t1.model) - set(MODELS))
    extra = sns.color_palette("colorblind", len(models))
    palette = {m: MODEL_COLOURS.get(m, extra[i]) for i, m in enumerate(models)}
    markers = dict(zip(METRICS, ("o", "s", "D", "^", "v", "P")))
    # one panel per row of the page (the column is ~770 px): legible ticks; symlog axes so 0.01 and
    # 100 both show (linear below 1 %, log above), padded so no marker sits on an axis
    fig = Figure(figsize=(7.0, 5.2 * len(settings) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(settings), 1, squeeze=False).ravel())
    lo, hi = -0.3, 160.0
    for ax, s in zip(axes, settings):
        t = t1[t1.setting == s]
        have = t[np.isfinite(t.published) & np.isfinite(t["mean"])]
        x = np.concatenate([np.linspace(0, 1, 50), np.geomspace(1, hi, 200)])
        ax.plot(x, x, color="0.5", lw=1, zorder=1)
        for r in have.itertuples():
            ci_lo = getattr(r, "range_lo", getattr(r, "ci_lo", np.nan))
            ci_hi = getattr(r, "range_hi", getattr(r, "ci_hi", np.nan))
            if np.isfinite(ci_lo) and np.isfinite(ci_hi):
                ax.errorbar(r.published, r.mean, yerr=[[r.mean - ci_lo], [ci_hi - r.mean]], color=palette[r.model],
                            lw=1, zorder=2)
        if len(have):
            sns.scatterplot(data=have, x="published", y="mean", hue="model", style="metric", palette=palette,
                            markers=markers, hue_order=[m for m in models if m in set(have.model)],
                            style_order=[m for m in METRICS if m in set(have.metric)], s=70, ax=ax, zorder=3,
                            legend=True, edgecolor="black", linewidth=0.4)
        missing = t[t.status != "ok"][["model"]].drop_duplicates()
        title = SETTING_LABELS.get(s, s) + (f" ({len(missing)} model(s) failed / not run)" if len(missing) else "")
        ax.set_title(title, fontsize=13)
        for set_scale in (ax.set_xscale, ax.set_yscale):
            set_scale("symlog", linthresh=1.0, linscale=0.5)
        ticks = [0, 0.5, 1, 2, 5, 10, 20, 50, 100]
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks]), ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
        ax.set_xlim(lo, hi), ax.set_ylim(lo, hi)
        ax.tick_params(labelsize=11)
        ax.set_xlabel("published (%)", fontsize=12)
        ax.set_ylabel("reproduced (%)", fontsize=12)
        ax.grid(alpha=0.3)
        if ax.get_legend() is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=10, title_fontsize=10,
                            frameon=False)
    return fig


__all__ = ["training_curves", "gallery", "published_vs_reproduced_figure", "default_gallery_queries"]
