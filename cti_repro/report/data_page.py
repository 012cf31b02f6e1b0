"""The data page: a catalogue's statistics beside the paper's, its shape, samples, pairs per setting.

Every catalogue string shown here (titles, paths, attributes) is escaped by the caller's Styler or
shown in a plain DataFrame, whose HTML pandas escapes: catalogue text never becomes markup.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cti_repro.config import SplitConfig
from cti_repro.data.catalogue import Catalogue
from cti_repro.data.pairs import build_setting
from cti_repro.report import paper
from cti_repro.report.styles import mpl_text
from cti_repro.study import SETTINGS

def provenance_box(cfg: Any, catalogue: Catalogue, root: Any = None) -> str:
    """The box at the top of the data page (HTML): what this catalogue is (synthetic or XMarket,
    products, fingerprint, folder relative to ``root``) and the encoders the profile asks for; a
    "Demonstration" warning when the catalogue is synthetic or the profile is labelled one."""
    import html

    from cti_repro.report.commands import shown_path
    from cti_repro.report.styles import admonition

    synthetic = cfg.data.source == "synthetic"
    demo = synthetic or bool(getattr(cfg.labels, "demonstration", False))
    img, txt = cfg.encoders.image, cfg.encoders.text
    weights = (f"{img.model} with <code>pretrained: {html.escape(str(img.pretrained))}</code>"
               + (" (random weights where those cannot be loaded: <code>allow_random</code>)" if img.allow_random else "")
               + f"; text: {html.escape(str(txt.model))}")
    what = (f"the embedded <strong>synthetic</strong> catalogue ({len(catalogue):,} generated products in the XMarket "
            "format), not XMarket: its statistics are shown beside the paper's only to compare shapes"
            if synthetic else f"{html.escape(cfg.data.source)} ({len(catalogue):,} products)")
    items = [("Profile", f"<code>{html.escape(cfg.profile)}</code>"), ("Catalogue", what),
             ("Folder", f"<code>{html.escape(shown_path(cfg.data_dir, root))}</code>"),
             ("Fingerprint", f"<code>{html.escape(catalogue.fingerprint())}</code>"), ("Image encoder", weights)]
    rows = "".join(f'<tr><th style="text-align:left;padding-right:1em;vertical-align:top">{k}</th>'
                   f"<td style='text-align:left'>{v}</td></tr>" for k, v in items)
    lead = ("<p><strong>Pipeline demonstration: the catalogue is synthetic — the results built on it are NOT a "
            "reproduction of the paper.</strong></p>" if demo else "")
    return admonition("warning" if demo else "note", "Demonstration, not a reproduction" if demo else "Provenance",
                      f'{lead}<table style="font-size:0.9em;border:none">{rows}</table>')


STAT_LABELS = {
    "products": "products", "unique_categories": "unique categories",
    "unique_category_paths": "unique category paths", "homonym_names": "names shared by several paths",
    "root_categories": "root (most general) categories",
    "leaf_categories": "leaf (most specific) categories", "category_product_pairs": "category-product pairs",
    "depth_mean": "path depth, mean", "depth_min": "path depth, min", "depth_max": "path depth, max",
    "attributes_mean": "attributes per product, mean", "attributes_min": "attributes per product, min",
    "attributes_max": "attributes per product, max", "attributes_total": "attributes, total",
    "attributes_unique": "attributes, unique", "images_missing": "products without a readable image",
}


def _count(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:,.2f}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v):,}"


def statistics_table(catalogue: Catalogue) -> pd.DataFrame:
    """The paper's data-set statistics (section 4) beside this catalogue's, as formatted strings.

    Returns:
        Index: the statistic; columns ``paper (XMarket US)`` and ``this catalogue``, and for a
        catalogue keyed by path (``data.category_key: path``) ``this catalogue, by name``: the
        counts the option changed.
    """
    ours, theirs = catalogue.stats(), paper.dataset()
    table = pd.DataFrame({"paper (XMarket US)": [_count(theirs.get(k)) for k in STAT_LABELS],
                          "this catalogue": [_count(ours.get(k)) for k in STAT_LABELS]}, index=list(STAT_LABELS.values()))
    if by_name := catalogue.meta.get("by_name"):
        table["this catalogue"] = table["this catalogue"].where(
            [k not in by_name for k in STAT_LABELS], [f"{v} (by path)" for v in table["this catalogue"]])
        table["this catalogue, by name"] = [_count(by_name.get(k)) for k in STAT_LABELS]
    return table


def import_table(catalogue: Catalogue) -> pd.DataFrame | None:
    """What the XMarket import behind ``catalogue`` read and dropped (``catalogue.json``).

    Returns:
        One row per item (source, market, file categories "k of 16", records read, kept, each
        drop reason, skipped lines, images) with a ``value`` column; None for a catalogue that
        is no XMarket import.
    """
    from cti_repro.data.import_meta import import_provenance

    info = import_provenance(catalogue.meta)
    if not info:
        return None
    cats = info["categories"]
    rows: dict[str, str] = {
        "source": info["source"], "market": str(info["market"]),
        "file categories imported": f"{len(cats)} of {info['categories_of']}: {', '.join(cats)}",
        "filters": "at least {min_attributes} attribute(s), path depth at least {min_depth}".format(**info["filters"]),
        "import complete": {True: "yes", False: "NO (interrupted; rerun to resume)"}.get(info["complete"], "?"),
    }
    for k in ("files", "records", "kept", "malformed", "blank", "duplicates", "file_errors", "files_failed",
              "path_elements_dropped"):
        if k in info:
            rows[k.replace("_", " ") + (" (lines)" if k in ("malformed", "blank") else "")] = _count(info[k])
    for reason, n in (info.get("dropped") or {}).items():
        rows[f"dropped: {reason.replace('_', ' ')}"] = _count(n)
    for status, n in (info.get("images") or {}).items():
        rows[f"images {status}"] = _count(n)
    return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


def shape_figure(catalogue: Catalogue) -> Figure:
    """Histograms of the category-path depth and of the attributes per product, with both means."""
    theirs = paper.dataset()
    depths = np.array([len(p) for p in catalogue.paths])
    n_attr = np.array([len(a) for a in catalogue.attributes])
    fig = Figure(figsize=(7.8, 3.0), layout="constrained")  # the column width
    axes = fig.subplots(1, 2)
    for ax, values, label, paper_mean in ((axes[0], depths, "category path depth", theirs["depth_mean"]),
                                          (axes[1], n_attr, "attributes per product", theirs["attributes_mean"])):
        if len(values):
            bins = np.arange(values.min(), values.max() + 2) - 0.5
            ax.hist(values, bins=bins, color="#0072B2", alpha=0.8)
            ax.axvline(values.mean(), color="#0072B2", ls="--", label=f"this catalogue: mean {values.mean():.2f}")
        ax.axvline(paper_mean, color="#D55E00", ls=":", lw=2, label=f"paper: mean {paper_mean}")
        ax.set_xlabel(label), ax.set_ylabel("products")
        ax.legend(fontsize="small")
    return fig


def roots_figure(catalogue: Catalogue, top: int = 15) -> Figure:
    """The ``top`` largest root categories by number of products (a horizontal bar chart)."""
    roots = pd.Series([p[0] for p in catalogue.paths]).value_counts()
    shown = roots.head(top)[::-1]
    fig = Figure(figsize=(7.8, 0.3 * len(shown) + 1), layout="constrained")
    ax = fig.subplots()
    ax.barh([mpl_text(r) for r in shown.index], shown.values, color="#0072B2")
    ax.set_xlabel("products")
    ax.set_title(f"all {len(roots)} root categories" if len(shown) == len(roots)
                 else f"{len(shown)} largest of {len(roots)} root categories")
    return fig


def sample_products(catalogue: Catalogue, n: int = 6, seed: int = 0) -> tuple[Figure, pd.DataFrame]:
    """``n`` products drawn with ``seed``: their images, and a table of title, path and attributes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sample = sorted(rng.choice(len(catalogue), size=min(n, len(catalogue)), replace=False).tolist())
    fig = Figure(figsize=(1.6 * max(1, len(sample)), 1.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(sample)), squeeze=False).ravel())
    for ax, i in zip(axes, sample):
        p = catalogue.image_path(i)
        if p is not None and p.is_file():
            try:
                with Image.open(p) as im:
                    ax.imshow(im.convert("RGB"))
            except OSError:
                ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(mpl_text(catalogue.product_ids[i]), fontsize=9)
        ax.axis("off")
    attrs = catalogue.attributes
    table = pd.DataFrame({
        "title": [catalogue.titles[i] for i in sample],
        "category path (root → leaf)": [" › ".join(catalogue.paths[i]) for i in sample],
        "attributes": ["; ".join(attrs[i][:4]) + (" …" if len(attrs[i]) > 4 else "") for i in sample],
    }, index=[catalogue.product_ids[i] for i in sample])
    return fig, table


def pairs_table(catalogue: Catalogue, split: SplitConfig) -> pd.DataFrame:
    """Pairs, queries and seen / unseen queries per setting beside the paper's category counts."""
    published = paper.setting_categories()
    rows = []
    for setting in SETTINGS:
        s = build_setting(catalogue, setting, split).summary()
        rows.append({"categories (paper)": published[setting], "categories": s["categories"],
                     "training pairs": s["train_pairs"], "validation pairs": s["val_pairs"], "test pairs": s["test_pairs"],
                     "test queries": s["test_queries"], "seen": s["test_queries_seen"], "unseen": s["test_queries_unseen"]})
    return pd.DataFrame(rows, index=list(SETTINGS))


__all__ = ["provenance_box", "import_table", "statistics_table", "shape_figure", "roots_figure", "sample_products", "pairs_table", "STAT_LABELS"]
