"""Figures (matplotlib + seaborn) and styled HTML tables (pandas Styler) for the report book.

No backend is forced: figures are plain ``Figure`` objects that notebooks show inline (with the
inline backend active) and scripts can ``fig.savefig``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cti_repro.results import METRICS, MODELS, TRAINED

SETTINGS: tuple[str, ...] = ("all", "most_general", "most_specific")
SETTING_LABELS = {"all": "All categories", "most_general": "Most general category",
                  "most_specific": "Most specific category"}
OK_COLOUR, WRONG_COLOUR = "#1a9641", "#d7191c"


def _fmt(x: float | None, digits: int = 2) -> str:
    """``x`` at ``digits`` decimals, ``—`` if missing."""
    return f"{x:.{digits}f}" if x is not None and np.isfinite(x) else "—"


def _ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status", "ok") == "ok"]


def _empty(message: str, size: tuple[float, float] = (6, 1.5)) -> Figure:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def training_curves(records: list[dict]) -> Figure:
    """Training (solid) and validation (dashed) loss per epoch: rows = settings, columns =
    CLIP-I / CLIP-IA / CLIP-ITA, one colour per seed; a dot marks the epoch whose weights were kept.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    runs = [r for r in _ok(records) if r.get("model") in TRAINED and (r.get("training") or {}).get("history")]
    settings = [s for s in SETTINGS if any(r.get("setting") == s for r in runs)]
    settings += sorted({r["setting"] for r in runs} - set(settings))
    if not settings:
        return _empty("No training history in these results (CLIP-I / -IA / -ITA not run).")
    seeds = sorted({r.get("seed", 0) for r in runs})
    colours = dict(zip(seeds, plt.get_cmap("tab10").colors * 10))
    fig = Figure(figsize=(4.2 * len(TRAINED), 3.0 * len(settings)), layout="constrained")
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
            ax.set_title(f"{m} — {SETTING_LABELS.get(s, s).lower()}", fontsize=10)
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
            models: list[str] | None = None, n_queries: int = 3) -> Figure:
    """Top-``k`` retrieved product images per model for a few category queries of ``setting``.

    A green frame and ``✓`` mark a relevant product (its category label in this setting equals
    the query), a red frame and ``✗`` a wrong one; below each image is the product's own label.
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
    from cti_repro.data.pairs import build_setting

    runs = {}
    for r in sorted(_ok(records), key=lambda r: r.get("seed", 0)):
        if r.get("setting") == setting and r.get("top10") and r.get("model") not in runs:
            runs[r["model"]] = r
    models = [m for m in (models or [*MODELS, *sorted(set(runs) - set(MODELS))]) if m in runs]
    if not models:
        fig = _empty(f"No rankings for {SETTING_LABELS.get(setting, setting).lower()} in these results.")
        fig.cti_gallery, fig.cti_queries = [], []
        return fig
    split = (runs[models[0]].get("config") or {}).get("split", {})
    data = build_setting(catalogue, setting, split.get("seed", 0), split.get("all_draw_seed", 0),
                         (split.get("train", 0.8), split.get("val", 0.1), split.get("test", 0.1)))
    index = {pid: i for i, pid in enumerate(catalogue.product_ids)}
    test_labels = pd.Series(data.labels[data.candidates]).value_counts().to_dict()
    if queries is None:
        known = set.intersection(*(set(runs[m]["top10"]) for m in models))
        queries = default_gallery_queries({q: n for q, n in test_labels.items() if q in known}, n_queries)
    k = min(k, 10)
    fig = Figure(figsize=(1.55 * k + 1.3, (1.75 * len(models) + 0.45) * max(1, len(queries))), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(max(1, len(queries)), 1, squeeze=False).ravel())
    info = []
    for sf, q in zip(subfigs, queries):
        n_rel = int(test_labels.get(q, 0))
        plural = "s" if n_rel != 1 else ""
        sf.suptitle(f"Query “{q}” — {n_rel} relevant test product{plural}", fontsize=11, fontweight="bold")
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
                ax.set_xlabel(label if len(label) <= 20 else label[:19] + "…", fontsize=7)
                info.append({"query": q, "model": m, "seed": runs[m].get("seed"), "rank": col + 1, "product_id": pid,
                             "label": label, "relevant": rel})
    fig.cti_gallery, fig.cti_queries = info, list(queries)
    return fig


VERDICT_COLOURS = {"OK": "#d9f2d9", "MISMATCH": "#f8d7da", "FAILED": "#e0e0e0", "not run": "#f2f2f2", "n/a": "#ffffff"}


def table1_block(t1: pd.DataFrame, setting: str) -> Any:
    """One setting of Table 1 as a styled HTML table (pandas Styler): models x metrics.

    Each cell shows the published value, ours (mean ± sd, n seeds) and the difference with the
    verdict; the background says OK (green) / MISMATCH (red) / FAILED or not run (grey); a cell
    whose model takes part in a ranking swap for that metric has an orange frame and ``⇅``.
    """
    from cti_repro.report import ranking_differences

    t = t1[t1.setting == setting]
    swapped = {(r.metric, m) for r in ranking_differences(t).itertuples() for m in r.swapped_models}
    cells, colours = {}, {}
    for r in t.itertuples():
        if r.status == "ok":
            sd = f" ± {_fmt(r.sd)}" if np.isfinite(r.sd) else ""
            ours = f"ours {_fmt(r.mean)}{sd} <small>(n={r.n})</small>"
            tail = f"Δ {r.diff:+.2f} {r.verdict}" if np.isfinite(r.diff) else r.verdict
        else:
            ours, tail = f"<b>{r.verdict}</b>", ""
        mark = " ⇅" if (r.metric, r.model) in swapped else ""
        cells.setdefault(r.model, {})[r.metric] = f"paper {_fmt(r.published)}<br>{ours}<br>{tail}{mark}"
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


def styled(df: pd.DataFrame, digits: int = 2, formats: dict[str, Any] | None = None, caption: str | None = None) -> Any:
    """A legible Styler: floats at ``digits`` decimals, NaN as ``—``, no index column."""
    fmt: dict[str, Any] = {c: (lambda v, d=digits: _fmt(v, d)) for c in df.columns if pd.api.types.is_float_dtype(df[c])}
    fmt.update(formats or {})
    st = df.style.format(fmt, na_rep="—").hide(axis="index")
    st = st.set_table_styles([{"selector": "th", "props": "text-align: center; font-size: 0.85em; padding: 0.2em 0.5em"},
                              {"selector": "td", "props": "font-size: 0.85em; padding: 0.2em 0.5em; white-space: nowrap"}])
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    st = st.set_properties(subset=text, **{"text-align": "left"}) if text else st
    nums = [c for c in df.columns if c not in text]
    st = st.set_properties(subset=nums, **{"text-align": "right"}) if nums else st
    return st.set_caption(caption) if caption else st


def published_vs_reproduced_figure(t1: pd.DataFrame) -> Figure:
    """Reproduced (mean ± sd over seeds) against published, one panel per setting.

    Colour = model, marker = metric; the diagonal is perfect agreement and the shaded band the
    OK tolerance of :data:`cti_repro.report.TOLERANCE_RULE`. Failed and missing rows are counted
    in the panel title.
    """
    import seaborn as sns

    from cti_repro.report import TOL_ABS, TOL_REL

    settings = [s for s in SETTINGS if s in set(t1.setting)] + sorted(set(t1.setting) - set(SETTINGS))
    if not settings:
        return _empty("No rows to plot.")
    models = [m for m in MODELS if m in set(t1.model)] + sorted(set(t1.model) - set(MODELS))
    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    markers = dict(zip(METRICS, ("o", "s", "D", "^", "v", "P")))
    fig = Figure(figsize=(5.0 * len(settings) + 1.8, 5.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(settings), squeeze=False).ravel())
    for ax, s in zip(axes, settings):
        t = t1[t1.setting == s]
        have = t[np.isfinite(t.published) & np.isfinite(t["mean"])]
        lim = max(1.0, float(np.nanmax([have.published.max(), (have["mean"] + have.sd.fillna(0)).max()]))
                  if len(have) else 1.0) * 1.06
        x = np.linspace(0, lim, 200)
        band = np.maximum(TOL_ABS, TOL_REL * x)
        ax.fill_between(x, x - band, x + band, color="0.88", zorder=0, label="OK tolerance")
        ax.plot(x, x, color="0.5", lw=1, zorder=1)
        for r in have.itertuples():
            if np.isfinite(r.sd):
                ax.errorbar(r.published, r.mean, yerr=r.sd, color=palette[r.model], lw=1, zorder=2)
        if len(have):
            sns.scatterplot(data=have, x="published", y="mean", hue="model", style="metric", palette=palette,
                            markers=markers, hue_order=[m for m in models if m in set(have.model)],
                            style_order=[m for m in METRICS if m in set(have.metric)], s=60, ax=ax, zorder=3,
                            legend=ax is axes[-1])
        missing = t[t.status != "ok"][["model"]].drop_duplicates()
        title = SETTING_LABELS.get(s, s)
        if len(missing):
            title += f"\n({len(missing)} model(s) failed / not run)"
        ax.set_title(title, fontsize=11)
        ax.set_xlim(0, lim), ax.set_ylim(0, lim)
        ax.set_aspect("equal")
        ax.set_xlabel("published (%)")
        ax.set_ylabel("reproduced (%)")
        ax.grid(alpha=0.3)
    leg = axes[-1].get_legend()
    if leg is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return fig


__all__ = ["training_curves", "gallery", "published_vs_reproduced_figure", "default_gallery_queries", "styled",
           "table1_block", "VERDICT_COLOURS"]
