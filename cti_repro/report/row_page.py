"""The row page: one result record as the tables and the training curve of its notebook."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from cti_repro.report import paper
from cti_repro.report.common import missing_images
from cti_repro.report.reproduction import reproduction_gaps
from cti_repro.report.styles import admonition
from cti_repro.study import METRICS


def demonstration_box(record: dict[str, Any]) -> str | None:
    """The "demonstration, not a reproduction" box for a record (HTML), or None when it reproduces
    the paper's set-up (:func:`cti_repro.report.reproduction.reproduction_gaps`)."""
    gaps = reproduction_gaps(record)
    if not gaps:
        return None
    data = record.get("data") or {}
    body = (f"<p>Profile <code>{html.escape(str(record.get('profile')))}</code> on a "
            f"{html.escape(str(data.get('source')))} catalogue of {int(data.get('products', 0)):,} products. "
            f"Not the paper's set-up: {html.escape('; '.join(gaps))}. These numbers show that the pipeline runs "
            "end to end; they cannot be compared with the paper's.</p>")
    return admonition("warning", "Demonstration, not a reproduction", body)


def data_table(record: dict[str, Any]) -> pd.DataFrame:
    """Pairs, categories and queries of the record's setting (from its ``data`` summary)."""
    s = record.get("data") or {}
    names = {"train_pairs": "training pairs", "val_pairs": "validation pairs",
             "test_pairs": "test pairs (= candidate products)", "categories": "categories in this setting",
             "train_categories": "categories among training pairs", "test_queries": "test queries",
             "test_queries_seen": "  seen in training", "test_queries_unseen": "  unseen in training"}
    n, total, _ = missing_images(record)
    counts = [s.get(k) for k in names] + [f"{n:,} of {total:,}" + (f" ({100 * n / total:.1f}%)" if total else "")]
    return pd.DataFrame({"count": counts}, index=[*names.values(), "images unreadable (zero vectors)"])


def missing_images_box(record: dict[str, Any]) -> str | None:
    """A warning box (HTML) when an image-based row has more than 1% unreadable images, else None."""
    n, total, flagged = missing_images(record)
    if not flagged:
        return None
    return admonition("danger", "Missing images", f"<p>{n:,} of {total:,} product images ({100 * n / total:.1f}%) "
                      "could not be read; their image features are zero vectors, which biases this row.</p>")


def metrics_table(record: dict[str, Any]) -> pd.DataFrame:
    """The paper's row of Table 1, this run's means, and the seen / unseen subsets (percent)."""
    pub = paper.table1()
    pub = pub[(pub.setting == record["setting"]) & (pub.model == record["model"])]
    sub = record.get("subsets") or {}
    return pd.DataFrame(
        [pub[list(METRICS)].iloc[0].to_dict() if len(pub) else {}, record.get("means") or {},
         sub.get("seen") or {}, sub.get("unseen") or {}],
        index=["paper (Table 1)", f"this run ({len(record.get('queries', []))} queries)",
               f"this run, seen ({sub.get('n_seen', 0)})", f"this run, unseen ({sub.get('n_unseen', 0)})"],
    ).reindex(columns=list(METRICS))


def training_figure(record: dict[str, Any]) -> Figure | None:
    """Training and validation loss per epoch with the learning rate; None for an untrained model."""
    from matplotlib.ticker import MaxNLocator

    tr = record.get("training")
    if not tr:
        return None
    hist = pd.DataFrame(tr["history"])
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(hist.epoch, hist.train_loss, marker="o", color="#0072B2", label="training loss")
    ax.plot(hist.epoch, hist.val_loss, marker="s", color="#D55E00", label="validation loss")
    ax.axvline(tr["best_epoch"], color="grey", ls=":", label=f"kept: epoch {tr['best_epoch']}")
    ax.set_xlabel("epoch"), ax.set_ylabel("loss (eq. 9)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2 = ax.twinx()
    ax2.step(hist.epoch, hist.lr, where="mid", color="#009E73", alpha=0.6, label="learning rate")
    ax2.set_ylim(0, 1.15 * hist.lr.max()), ax2.set_ylabel("learning rate")
    ax2.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.18),
              ncol=4, fontsize="small", frameon=False)
    ax.set_title(f"{record['model']}, {record['setting']}, seed {record.get('seed')}")
    return fig


def training_summary(record: dict[str, Any]) -> str:
    """One line: the epoch kept, its validation loss, steps, seconds, device, AMP."""
    tr = record.get("training") or {}
    if not tr:
        return f"{record.get('model')} is not trained (a zero-shot or lexical baseline)."
    return (f"kept epoch {tr['best_epoch']} of {len(tr['history'])} (validation loss {tr['best_val_loss']:.4f})\n"
            f"{tr['steps']} optimiser steps in {tr['seconds']:.1f} s on {tr['device']}, AMP {tr['amp']}")


def convergence_box(record: dict[str, Any]) -> str | None:
    """A warning (HTML) when the kept epoch is the last one: the validation loss was still falling,
    so training had not converged and more epochs may change this row; None otherwise."""
    tr = record.get("training") or {}
    hist = tr.get("history") or []
    if not hist or tr.get("best_epoch") != hist[-1].get("epoch", len(hist)):
        return None
    return admonition("warning", "Training had not converged", (
        f"<p>The epoch kept (lowest validation loss) is the last one, {tr['best_epoch']} of {len(hist)}: the "
        "validation loss was still falling when training stopped. More epochs (<code>train.epochs</code>, e.g. "
        "<code>--set train.epochs=...</code>) may change this row's numbers.</p>"))


def first_run_note(record: dict[str, Any]) -> str:
    """What the first run of a row costs beyond the row itself (HTML paragraph): the catalogue's
    features are extracted once per profile and cached, and ``mpnet-offline`` is built once."""
    from cti_repro.study import FEATURES_BY_MODEL

    secs = (record.get("feature_stats") or {}).get("image_seconds")
    took = f" (the image features took {float(secs):.0f} s in this build)" if secs else ""
    text_enc = ((record.get("encoders") or {}).get("text") or {}).get("name", "")
    mpnet = (" and builds the offline MPNet text encoder from PyPI packages once (<code>mpnet-offline</code>)"
             if "mpnet" in str(text_enc).lower() else "")
    parts = ", ".join(FEATURES_BY_MODEL.get(record.get("model"), ())) or "features"
    return (f"<p>First run: on a fresh clone the first row of a profile also extracts the catalogue's features "
            f"(this row's: {html.escape(parts)}){took}{mpnet}; they are cached and every later row reuses them, so "
            "the first run takes longer than the wall time below (minutes on the embedded catalogue).</p>")


def _encoder_text(e: dict[str, Any]) -> str:
    """``name (weights, pretrained: ...; activation, decided by ...)``: the activation part where the record
    has the encoder's ``architecture`` (open_clip models: QuickGELU or GELU, from the checkpoint, the tag's
    config or ``encoders.image.quick_gelu``; a wrong one changes every feature)."""
    arch = e.get("architecture") or {}
    act = f"; {arch['activation']}" if arch.get("activation") else ""
    if act and arch.get("activation_from"):
        act += f", decided by {arch['activation_from']}"
    return f"{e.get('name')} ({e.get('weights')}, pretrained: {e.get('pretrained')}{act})"


def provenance_table(record: dict[str, Any], path: str, root: str | None = None) -> pd.DataFrame:
    """What produced the record: file (relative to ``root``), profile, hashes, encoders, model,
    commit, key versions."""
    from cti_repro.report.commands import shown_path

    enc = record.get("encoders") or {}
    prov = {
        "result file": shown_path(path, root),
        "profile": record.get("profile"),
        "config hash": record.get("config_hash"),
        "data fingerprint": record.get("data_fingerprint"),
        **{f"{role} encoder": _encoder_text(e) for role, e in enc.items()},
        "model": ", ".join(f"{k}={v}" for k, v in (record.get("model_info") or {}).items()),
        "git commit": record.get("git_commit"),
        **{k: v for k, v in (record.get("versions") or {}).items()
           if k in ("torch", "open_clip_torch", "sentence-transformers")},
    }
    return pd.DataFrame({"value": prov}).rename_axis(None)




def commands_box(setting: str, model: str, profile: str, seed: int, results_dir: str = "", config_path: str = "",
                 root: str | None = None, note: str = "") -> str:
    """The "run this page by hand" box of a row page, from the page's own parameters (HTML);
    ``note`` (HTML) is appended inside the box."""
    from pathlib import Path

    from cti_repro.report.commands import commands_html, row_commands

    cmds = row_commands(setting, model, profile, seed, results_dir, config_path, root=Path(root) if root else None)
    return commands_html(cmds, "this row", note)


def xmodal_commands_box(model: str, profile: str, seed: int, results_dir: str = "", config_path: str = "",
                        root: str | None = None) -> str:
    """The "run this page by hand" box of a text-image row page (HTML)."""
    from pathlib import Path

    from cti_repro.report.commands import commands_html, xmodal_row_commands

    return commands_html(xmodal_row_commands(model, profile, seed, results_dir, config_path,
                                             root=Path(root) if root else None), "this row")


__all__ = ["convergence_box", "first_run_note", "xmodal_commands_box", "demonstration_box", "data_table", "metrics_table", "training_figure", "training_summary", "provenance_table",
           "commands_box"]
