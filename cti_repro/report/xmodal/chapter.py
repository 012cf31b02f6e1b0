"""The text <-> image chapter (Rubio et al. 2017): our table beside theirs, recall curves, gallery, per category.

The notebooks ``book/templates/report_xmodal.ipynb`` and ``xmodal_row.ipynb`` call these functions
on the result records of :mod:`cti_repro.run.xmodal` (``cti_repro.results.load_xmodal_results``).
Every number comes from the records (their stored ranks), every published one from
:func:`cti_repro.report.paper.rubio2017`.
"""

from __future__ import annotations

import textwrap

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cti_repro.evaluation.xmodal_metrics import median_rank_percent, recall_curve
from cti_repro.report import paper
from cti_repro.report.common import empty_figure, fmt, ok_records
from cti_repro.report.styles import mpl_text
from cti_repro.study import XMODAL_ALL, XMODAL_MODELS, XMODAL_PUBLISHED_ROW

TABLE_METRICS: tuple[str, ...] = ("MedR%_i2t", "MedR%_t2i", "R@5%_i2t", "R@5%_t2i", "R@1_t2i", "R@10_t2i", "MRR_t2i")

RUBIO_SETUP = ("an AlexNet image branch at 227 × 227 trained on their data, a text branch over pre-trained word2vec "
               "vectors, a classical bag of words and KCCA trained on 10,000 descriptors")


def _order(records: list[dict]) -> list[dict]:
    rank = {m: i for i, m in enumerate(XMODAL_ALL)}
    return sorted(ok_records(records), key=lambda r: (rank.get(r.get("model"), 99), r.get("seed", 0)))


def _first_by_model(records: list[dict]) -> dict[str, dict]:
    """The first (lowest-seed) successful record of each model, in table order."""
    out: dict[str, dict] = {}
    for r in _order(records):
        out.setdefault(r["model"], r)
    return out


def _weights(image: dict) -> str:
    return f"{image.get('weights', '?')} ({'pretrained' if image.get('pretrained') else 'not pretrained'})"


def what_ran_frame(records: list[dict]) -> pd.DataFrame:
    """One row per model, from each record's ``ran`` block (:func:`cti_repro.run.xmodal.models.what_ran`):
    whose model, image branch, its weights, input size, text representation, where its vectors came
    from, exact or approximate KCCA, and the query text. Records without ``ran`` show ``not recorded``."""
    rows = []
    for model, r in _first_by_model(records).items():
        ran = r.get("ran")
        if not ran:
            rows.append({"model": model, "whose": "not recorded"})
            continue
        img, txt = ran["image"], ran["text"]
        rows.append({"model": model, "whose": ran["whose"], "image branch": img["branch"], "image weights": _weights(img),
                     "image input": f"{img['input_px']} px" if img.get("input_px") else "—",
                     "text": txt["representation"], "text vectors": txt["vectors"], "KCCA": ran.get("kcca") or "—",
                     "query": ran["query"]})
    return pd.DataFrame(rows)


def not_a_reproduction(records: list[dict]) -> str:
    """The chapter's opening box, generated from the records: Rubio et al.'s set-up, then what this
    profile's rows of their models actually ran (image branch, weights, text vectors), so the text
    never claims a model that did not run. Plain text (escape it for HTML)."""
    head = (f"Rubio et al.'s data set (431,841 fashion images, 32 categories) is not public; they used {RUBIO_SETUP}. ")
    first = _first_by_model(records)
    rubio = {m: r["ran"] for m, r in first.items() if (r.get("ran") or {}).get("whose", "").startswith("Rubio")}
    if not rubio:
        body = "No row of their models has run on this profile yet. "
    else:
        parts = []
        for key in dict.fromkeys((ran["image"]["branch"], _weights(ran["image"]), ran["image"].get("input_px"))
                                 for ran in rubio.values()):
            models = [m for m, ran in rubio.items()
                      if (ran["image"]["branch"], _weights(ran["image"]), ran["image"].get("input_px")) == key]
            px = f", {key[2]} × {key[2]} px input" if key[2] else ""
            parts.append(f"{', '.join(models)}: image side {key[0]}{px}, weights {key[1]}")
        texts = dict.fromkeys(f"{ran['text']['representation']}, {ran['text']['vectors']}" for ran in rubio.values())
        kcca = [f"{m}: {ran['kcca']} KCCA" for m, ran in rubio.items() if ran.get("kcca")]
        body = ("Here, the rows named after their models ran as follows. " + "; ".join(parts) + ". Text: "
                + "; ".join(texts) + "." + (" " + "; ".join(kcca) + "." if kcca else "") + " ")
        if any(not ran["image"]["pretrained"] for ran in rubio.values()):
            body += "Image weights that are not pretrained make those rows a pipeline demonstration. "
    return (head + body + "Our rows sit beside their Table 1 for orientation only: on another catalogue they are not "
            "a reproduction of it and cannot confirm or refute it.")


def summary_frame(records: list[dict]) -> pd.DataFrame:
    """Per model: mean and standard deviation over seeds of :data:`TABLE_METRICS`, seeds, test size."""
    rows = []
    recs = _order(records)
    for model in dict.fromkeys(r["model"] for r in recs):
        mine = [r for r in recs if r["model"] == model]
        row: dict = {"model": model, "seeds": len(mine), "test products": mine[0].get("n_candidates")}
        for m in TABLE_METRICS:
            v = np.array([r["means"].get(m, np.nan) for r in mine], float)
            row[m], row[f"{m} sd"] = float(np.nanmean(v)), float(np.nanstd(v)) if len(v) > 1 else float("nan")
        acc = [r.get("aux_accuracy") for r in mine if r.get("aux_accuracy")]
        row["aux acc. image"] = float(np.mean([a["image"] for a in acc])) if acc else float("nan")
        row["aux acc. text"] = float(np.mean([a["text"] for a in acc])) if acc else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(records: list[dict]) -> pd.DataFrame:
    """:func:`summary_frame` for the page: one row per measure, one column per model, ``mean ± sd``
    (the models are few, the measures many: this way the table fits the column)."""
    frame = summary_frame(records)
    if frame.empty:
        return frame

    def cell(mean: float, sd: float, digits: int = 2) -> str:
        if not np.isfinite(mean):
            return "—"
        return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")

    rows = {"seeds": [str(v) for v in frame["seeds"]], "test products": [str(v) for v in frame["test products"]]}
    for m in TABLE_METRICS:
        rows[m] = [cell(a, b, 3 if m.startswith("MRR") else 2) for a, b in zip(frame[m], frame[f"{m} sd"])]
    for m in ("aux acc. image", "aux acc. text"):
        rows[m] = [cell(v, float("nan")) for v in frame[m]]
    out = pd.DataFrame(rows, index=list(frame["model"])).T
    out.index.name = "measure"
    return out.reset_index()


def table_beside_rubio(records: list[dict]) -> pd.DataFrame:
    """Median rank (percent of the test set, lower is better), ours (mean ± sd over seeds) beside Rubio et al.'s Table 1."""
    pub = paper.rubio2017().set_index("model")
    ours = summary_frame(records).set_index("model") if records else pd.DataFrame()
    first = _first_by_model(records)
    rows = []
    for model in [m for m in XMODAL_ALL if m in XMODAL_MODELS or m in first]:  # variants: only when run
        whose = ((first.get(model) or {}).get("ran") or {}).get("whose", "—")
        row = {"model": model, "whose": whose, "Rubio et al. row": XMODAL_PUBLISHED_ROW.get(model, "—")}
        for d, label in (("i2t", "img→txt"), ("t2i", "txt→img")):
            key = f"MedR%_{d}"
            if model in ours.index:
                sd = ours.loc[model, f"{key} sd"]
                row[f"ours {label}"] = fmt(ours.loc[model, key]) + (f" ± {fmt(sd)}" if np.isfinite(sd) else "")
            else:
                row[f"ours {label}"] = "not run"
            pub_row = XMODAL_PUBLISHED_ROW.get(model)
            row[f"Rubio {label}"] = fmt(pub.loc[pub_row, key]) if pub_row in pub.index else "—"
        row["ours R@5% txt→img"] = fmt(ours.loc[model, "R@5%_t2i"]) if model in ours.index else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def published_notes() -> str:
    """Rubio et al.'s other reported numbers (recall in the top 5 %, auxiliary accuracies), as a sentence."""
    pub = paper.published()["rubio2017"]
    acc = pub["aux_accuracy"]
    return (f"Rubio et al. also report about {pub['recall_top5pct']:.0f}% of the true matches within the top 5% of the "
            f"ranking and auxiliary classification accuracies of {acc['image']:.0f}% (images) and {acc['text']:.0f}% "
            f"(texts). Source: {pub['source']}.")


def recall_curve_figure(records: list[dict], points: int = 201) -> Figure:
    """Recall (percent of queries whose match is within the cut-off) against the cut-off in percent
    of the test set, both directions, one line per model (seeds pooled)."""
    recs = _order(records)
    if not recs:
        return empty_figure("No text-image results yet (cti-repro xmodal run --model ...).")
    fig = Figure(figsize=(7.8, 3.4), layout="constrained")  # the column width
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (d, title) in zip(axes, (("t2i", "text → image"), ("i2t", "image → text"))):
        for model in dict.fromkeys(r["model"] for r in recs):
            mine = [r for r in recs if r["model"] == model]
            ys = [recall_curve(r["ranks"][d], r["n_candidates"], points) for r in mine]
            ax.plot(ys[0][0], np.mean([y for _, y in ys], axis=0), label=model, lw=1.6)
        ax.plot([0, 100], [0, 100], color="grey", ls=":", lw=1, label="random")
        ax.set_title(title)
        ax.set_xlabel("rank cut-off (% of the test set)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall (%)")
    axes[1].legend(fontsize=8, loc="lower right")
    return fig


def per_category_table(records: list[dict], direction: str = "t2i") -> pd.DataFrame:
    """Median rank (% of the whole test set) per root category of the query product, one column per model
    (first seed), the number of queries per category in the first column."""
    recs = _order(records)
    cols: dict[str, dict] = {}
    counts: dict[str, int] = {}
    for r in recs:
        if r["model"] in cols:
            continue
        per = (r.get("per_root_category") or {}).get(direction) or {}
        cols[r["model"]] = {c: v["MedR%"] for c, v in per.items()}
        counts.update({c: v["queries"] for c, v in per.items()})
    if not cols:
        return pd.DataFrame()
    df = pd.DataFrame(cols)
    df.insert(0, "queries", pd.Series(counts))
    return df.sort_index().rename_axis("root category").round(2)


def row_metrics_table(record: dict) -> pd.DataFrame:
    """One record's metrics as a two-column (text → image, image → text) table."""
    means = record["means"]
    names = ["MedR%", "R@1", "R@5", "R@10", "R@1%", "R@5%", "R@10%", "MRR"]
    return pd.DataFrame({"text → image": [means.get(f"{n}_t2i") for n in names],
                         "image → text": [means.get(f"{n}_i2t") for n in names]}, index=names).round(3)


def _thumb(ax, path: Path | None) -> None:
    from PIL import Image

    ax.set_xticks([])
    ax.set_yticks([])
    if path is not None and Path(path).is_file():
        with Image.open(path) as im:
            ax.imshow(np.asarray(im.convert("RGB")))
    else:
        ax.text(0.5, 0.5, "no image", ha="center", va="center", fontsize=7)


def gallery_figure(record: dict, catalogue, queries: int = 4, top: int = 5) -> Figure:
    """Text queries of one record (its ``gallery``) with their top images; the true match framed green.

    Args:
        record: a result record of :func:`cti_repro.run.xmodal.row.run_xmodal`.
        catalogue: the profile's catalogue (for the image files).
        queries, top: rows and images per row shown.
    """
    items = (record.get("gallery") or [])[:queries]
    if not items:
        return empty_figure("No gallery in this result.")
    pos = {pid: i for i, pid in enumerate(catalogue.product_ids)}
    fig = Figure(figsize=(7.8, 7.8 / (top + 2.6) * 1.25 * len(items) + 0.4), layout="constrained")  # the column width
    axes = np.atleast_2d(fig.subplots(len(items), top + 1, squeeze=False,
                                      gridspec_kw={"width_ratios": [2.6] + [1] * top}))
    for row, item in zip(axes, items):
        row[0].set_axis_off()
        text = item["text"] if len(item["text"]) < 120 else item["text"][:117] + "..."
        # whole words per line (a long word alone is cut at the width, not mid-word elsewhere)
        row[0].text(0, 0.5, mpl_text("\n".join(textwrap.wrap(text, 26))), va="center", fontsize=7)
        for ax, pid in zip(row[1:], item["top"][:top]):
            _thumb(ax, catalogue.image_path(pos[pid]) if pid in pos else None)
            if pid == item["query"]:
                for s in ax.spines.values():
                    s.set_edgecolor("#2a9d3f")
                    s.set_linewidth(3)
    fig.suptitle(f"{record['model']}, seed {record['seed']}: text query → top {top} test images "
                 f"(green frame: the product's own image)", fontsize=9)
    return fig


def median_rank_check(record: dict) -> float:
    """The stored ``MedR%_t2i`` recomputed from the stored ranks (the notebooks show both agree)."""
    return median_rank_percent(record["ranks"]["t2i"], record["n_candidates"])


__all__ = ["summary_table", "TABLE_METRICS", "RUBIO_SETUP", "what_ran_frame", "not_a_reproduction", "summary_frame", "table_beside_rubio", "published_notes",
           "recall_curve_figure", "per_category_table", "row_metrics_table", "gallery_figure", "median_rank_check"]
