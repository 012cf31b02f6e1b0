"""The build-dependent parts of the book's committed pages, and the downloads of a build.

``cti_repro.run.book.publish`` calls these after a build's notebooks have run; each returns
MyST Markdown that the ``{cti-generated}`` directive (``book/_ext/cti_book.py``) parses into a
committed page: what this build is (intro and results pages), the headline claims, the list of
pages with the command for each missing one, the row index of each setting, the downloads.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from cti_repro.report.claims import claims_table
from cti_repro.report.common import ok_records
from cti_repro.report.provenance import demonstration_reasons, provenance
from cti_repro.results import results_frame
from cti_repro.study import METRICS, SETTING_LABELS

ENV_PACKAGES = ("cti_repro", "torch", "open_clip_torch", "sentence-transformers", "transformers", "numpy",
                "pandas", "scipy", "matplotlib", "papermill", "jupyter-book")


def md_table(df: pd.DataFrame) -> str:
    """A Markdown table (cells escaped for ``|``); empty string for an empty frame.

    A missing cell (None, or the NaN pandas puts where a row lacks a column) is left blank: a reader
    would take a printed ``nan`` for a number.
    """
    if df.empty:
        return ""

    def esc(v: object) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(esc, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def build_md(records: list[dict], profile: str, cfg: Any = None) -> str:
    """What this build is: demonstration or reproduction, profile, catalogue, weights, seeds.

    Read from the records (what actually ran), else from ``cfg`` (nothing ran yet).
    """
    p = provenance(records)
    demo = p["demonstration"] or bool(cfg is not None and getattr(cfg.labels, "demonstration", False) and not records)
    kind, title = ("warning", "Demonstration, not a reproduction") if demo else ("note", "A reproduction run")
    source = ", ".join(p["data_source"]) or (cfg.data.source if cfg is not None else "—")
    products = ", ".join(f"{n:,}" for n in p["products"]) or "—"
    weights = "; ".join(p["encoders"]) or "—"
    if demo and not records:  # nothing ran yet: the profile says what it will be
        p = {**p, "synthetic": cfg.data.source == "synthetic"}
    reasons = demonstration_reasons(p)
    why = (f"{reasons[0].upper()}{reasons[1:]}: these numbers show that "
           "the pipeline runs end to end and **cannot be compared with the paper's**. "
           if demo else "The numbers below come from the real data and pretrained weights. ")
    lines = ["```{admonition} " + title, f":class: {kind}", "", why + "To reproduce the paper, follow "
             "[Reproducing on the real data](real_data.md).", "",
             # the records are Table 1's rows; the other studies' rows are counted on their own pages
             f"- **Profile:** `{profile}` (Table 1 runs: {p['ok']} ok, {p['failed']} failed)",
             f"- **Catalogue:** {source}, {products} products",
             f"- **Encoders and weights:** {weights}",
             f"- **Seeds:** {', '.join(map(str, p['seeds'])) or '—'}",
             f"- **Git commit:** {', '.join(p['git_commits'][:2]) or '—'}",
             f"- **Table 1 rows finished:** {' … '.join(dict.fromkeys(p['dates'])) if p['dates'] else '—'}", "```"]
    return "\n".join(lines) + "\n"


DEMO_HEADLINE = ("**Demonstration build: these are the pipeline's orderings on its own data and weights, not "
                 "evidence about the paper.**")


def headline_md(t1: pd.DataFrame, records: list[dict]) -> str:
    """The paper's claims on this build (:func:`cti_repro.report.claims.claims_table`).

    The first line of a build that does not reproduce the paper's set-up (any Table 1 row with a
    result whose ``reproduces`` is false) is :data:`DEMO_HEADLINE`. Then one row per claim, one
    column per setting (``holds 6/6 (paper 6/6)``; blank where the paper makes no such claim), and
    the metrics where ours does not hold, with the closest difference and its interval.
    """
    t = claims_table(t1, records)
    ran = t1[t1.status == "ok"] if "status" in t1 else t1.iloc[:0]
    demo = bool(len(ran)) and not bool(ran["reproduces"].all())
    head = DEMO_HEADLINE + "\n\n" if demo else ""
    if (t.verdict == "not run").all():
        return head + "No Table 1 results in this build: the claims cannot be checked.\n"
    held = t[t.verdict == "holds"]
    intro = (f"Of the paper's {len(t)} (claim, setting) checks, **{len(held)} hold on every metric** in this build, "
             f"{(t.verdict == 'partly').sum()} on some, {(t.verdict == 'fails').sum()} on none, "
             f"{(t.verdict == 'not run').sum()} not run. A claim holds on a metric when the 95% interval of the "
             "difference (over the test queries and the seeds) lies above 0; a claim naming a model without a "
             "successful result is not run. Each cell: the verdict, then on how many of the six metrics it holds "
             "here and in the paper's table; blank where the paper makes no such claim.")
    t = t.assign(cell=[f"**{v}** {o} (paper {p})" for v, o, p in zip(t.verdict, t.ours, t.paper)])
    wide = t.pivot(index="claim", columns="setting", values="cell").reindex(
        index=list(dict.fromkeys(t.claim)), columns=[s for s in SETTING_LABELS if s in set(t.setting)]).fillna("")
    wide.columns = [SETTING_LABELS.get(c, c) for c in wide.columns]
    text = head + intro + "\n\n" + md_table(wide.reset_index()) + "\n"
    broken = t[t.evidence.astype(bool)]
    if len(broken):
        text += "\nWhere ours does not hold:\n\n" + "\n".join(
            f"- {r.claim}, {SETTING_LABELS.get(r.setting, r.setting).lower()}: {r.evidence}"
            for r in broken.itertuples()) + "\n"
    return text


def table1_md(t1: pd.DataFrame, records: list[dict]) -> str:
    """Table 1 at a glance for the results page: published / ours per cell, a chance line per
    setting (:func:`cti_repro.report.table1_page.compact_table1`)."""
    from cti_repro.report.table1_page import CHANCE_LABEL, compact_table1

    if t1.empty or (t1.status == "not run").all():
        return "No Table 1 results in this build.\n"
    return ("Each cell: the paper's value / ours (mean over seeds), percent. *" + CHANCE_LABEL + "*: what a ranking "
            "drawn at random scores over this build's test queries (1 / queries for P@k and R-precision; MAP@k has "
            "no closed form). Intervals, verdicts and rankings are on the Table 1 page.\n\n"
            + md_table(compact_table1(t1, records)) + "\n")


def pages_md(pages: list[dict[str, Any]]) -> str:
    """Bullets of the report pages: a link when built, else the command that builds it."""
    out = []
    for p in pages:
        if p.get("doc"):
            out.append(f"- [{p['title']}]({p['doc']})")
        else:
            out.append(f"- {p['title']}: **missing** (`{p['command']}`)")
    return "\n".join(out) + "\n"


def rows_md(rows: list[dict[str, Any]], metrics: tuple[str, ...] = ("P@1", "R-precision")) -> str:
    """The row index of one setting (or study): model, seed, page or status, ``metrics`` of each
    row's means, and the missing rows' commands."""
    table = pd.DataFrame([{"model": r["model"], "seed": "—" if r["seed"] is None else r["seed"],
                           "page": f"[{r['status']}]({r['doc']})" if r.get("doc") else r["status"],
                           **{m: r.get("means", {}).get(m, "") for m in metrics}}
                          for r in rows])
    table[list(metrics)] = table[list(metrics)].map(lambda v: f"{v:.2f}" if isinstance(v, float) else v)
    missing = [r for r in rows if not r.get("doc")]
    text = md_table(table) + "\n"
    if missing:
        text += "\nMissing pages and the commands that produce them:\n\n" + "\n".join(
            f"- {r['model']}" + (f", seed {r['seed']}" if r["seed"] is not None else "") + f": `{r['command']}`"
            for r in missing) + "\n"
    return text


def environment(records: list[dict]) -> pd.DataFrame:
    """Python and key package versions, CPU / GPU and the commit of a build (one row per item)."""
    ok = ok_records(records)
    first = ok[0] if ok else {}
    dev = first.get("device") or {}
    items = {"python": sys.version.split()[0], "platform": platform.platform(),
             "CPU": dev.get("processor") or platform.processor() or platform.machine(),
             "CPU cores": dev.get("cpu_count"), "device": dev.get("device", "—"), "GPU": dev.get("gpu") or "none",
             "git commit": first.get("git_commit", "—")}
    versions = first.get("versions") or {}
    for name in ENV_PACKAGES:
        try:
            items[name] = versions.get(name) or metadata.version(name)
        except metadata.PackageNotFoundError:
            items[name] = "not installed"
    return pd.DataFrame({"item": list(items), "value": [str(v) for v in items.values()]})


PROVENANCE_COLUMNS = ("profile", "data_source", "encoder_weights", "demonstration")


def record_provenance(record: dict) -> dict[str, Any]:
    """The provenance columns of one record's line in a download, so that a line copied out of
    the book still says what it is: profile, data source, the encoders' weights as they ran
    (``image=random(seed=0)``), and whether it is a demonstration (synthetic data or random weights)."""
    enc = record.get("encoders") or {}
    random_weights = any(not e.get("pretrained", True) for e in enc.values())
    return {"profile": record.get("profile"), "data_source": (record.get("data") or {}).get("source"),
            "encoder_weights": "; ".join(f"{role}={e.get('weights')}" for role, e in sorted(enc.items())) or None,
            "demonstration": bool(record.get("demonstration") or random_weights)}


def with_provenance(df: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """``df`` with :data:`PROVENANCE_COLUMNS` of the build (the values its successful records share,
    joined with ``|`` where they differ) appended to every line."""
    lines = [record_provenance(r) for r in ok_records(records)]
    shared = {k: "|".join(dict.fromkeys(str(v) for v in (x[k] for x in lines) if v is not None)) or None
              for k in PROVENANCE_COLUMNS}
    if lines:
        shared["demonstration"] = any(x["demonstration"] for x in lines)
    return df.assign(**shared)


def per_seed_metrics(records: list[dict]) -> pd.DataFrame:
    """One row per result record: setting, model, seed, status, the six metrics, wall time, and
    the record's :data:`PROVENANCE_COLUMNS`."""
    df = results_frame(records)
    df["wall_time_s"] = [r.get("wall_time_s") for r in records]
    df["finished_at"] = [r.get("finished_at") for r in records]
    prov = pd.DataFrame([record_provenance(r) for r in records], columns=list(PROVENANCE_COLUMNS), index=df.index)
    df = pd.concat([df, prov], axis=1)
    return df.sort_values(["setting", "model", "seed"], kind="stable").reset_index(drop=True)


def encoders_that_ran(records: list[dict]) -> dict[str, dict[str, Any]]:
    """Per encoder role, the model and weights the successful records ran with (``pretrained``
    false where the asked-for weights were replaced by random ones, ``allow_random``)."""
    out: dict[str, dict[str, Any]] = {}
    for r in ok_records(records):
        for role, e in (r.get("encoders") or {}).items():
            out.setdefault(role, {"name": e.get("name"), "weights": e.get("weights"),
                                  "pretrained": bool(e.get("pretrained", True))})
    return out


def stages_frame(stages: dict[str, Any]) -> pd.DataFrame:
    """The build's stage times (``build_stages.json``) as a table."""
    rows = [{"stage": k, "seconds": round(float(v.get("seconds", 0)), 1), "detail": v.get("detail", ""),
             "finished at": v.get("finished_at", "")} for k, v in (stages.get("stages") or {}).items()]
    return pd.DataFrame(rows, columns=["stage", "seconds", "detail", "finished at"])


def write_downloads(out: Path, records: list[dict], t1: pd.DataFrame, cfg: Any = None,
                    stages: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the build's downloads into ``out``; returns label -> file.

    ``table1_comparison.csv`` (:func:`cti_repro.report.table1`), ``per_seed_metrics.csv``,
    ``config.yaml`` (the resolved profile), ``environment.csv``, ``build_stages.json``.
    """
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    files = {"comparison table (Table 1, published vs reproduced)": out / "table1_comparison.csv",
             "per-seed metrics": out / "per_seed_metrics.csv", "environment": out / "environment.csv",
             "stage times of the build": out / "build_stages.json"}
    t1.to_csv(files["comparison table (Table 1, published vs reproduced)"], index=False)
    per_seed_metrics(records).to_csv(files["per-seed metrics"], index=False)
    environment(records).to_csv(files["environment"], index=False)
    files["stage times of the build"].write_text(json.dumps(stages or {}, indent=2))
    if cfg is not None:
        files["resolved config (YAML)"] = out / "config.yaml"
        conf = {"profile": cfg.profile, **{k: v for k, v in dataclasses.asdict(cfg).items() if k != "root"}}
        ran = encoders_that_ran(records)
        # `encoders` is what the profile asks for; `ran.encoders` what the runs used (random weights
        # where `pretrained` could not be loaded and `allow_random` let the run go on)
        header = "".join(f"# encoders.{role}: ran with {e['weights']} ({'pretrained' if e['pretrained'] else 'RANDOM weights'})\n"
                         for role, e in ran.items())
        conf["ran"] = {"encoders": ran}
        files["resolved config (YAML)"].write_text(header + yaml.safe_dump(conf, sort_keys=False))
    return files


PAGE_DOWNLOADS = {"per_query.csv": "per-query scores of every Table 1 run (long format)",
                  "sensitivity.csv": "sensitivity study: each variant's difference from the default",
                  "beyond.csv": "beyond the paper: each extension's difference from CLIP-ITA",
                  "xmodal.csv": "text-image study: mean and sd over seeds per model"}


def _beyond_frame(records: list[dict], results_dir: Path | None) -> pd.DataFrame:
    """The beyond page's two tables of differences as one frame, Holm over both (as on the page)."""
    from cti_repro.report import beyond

    extensions = beyond.load_extensions(results_dir) if results_dir is not None else {}
    diffs, tree = beyond.holm_over_page(beyond.extension_differences(records, extensions), beyond.tree_effects(extensions))
    return pd.concat([diffs, tree], ignore_index=True) if len(tree) else diffs


def write_page_downloads(out: Path, records: list[dict], results_dir: Path | None) -> dict[str, Path]:
    """The numbers of the Table 1, sensitivity, beyond and text-image pages as CSV in ``out``
    (each page links its file from ``runs/_book/downloads/``), with the build's provenance
    columns (:func:`with_provenance`); a file with its header only when nothing ran. Returns
    label -> file (:data:`PAGE_DOWNLOADS`)."""
    from cti_repro.report import ablations, beyond
    from cti_repro.report.xmodal import chapter as xmodal
    from cti_repro.report.tables import per_query_frame
    from cti_repro.results import load_xmodal_results

    have = results_dir is not None and results_dir.is_dir()
    frames = {
        "per_query.csv": per_query_frame(records),
        "sensitivity.csv": ablations.ablation_table(results_dir) if have else pd.DataFrame(columns=ablations.COLUMNS),
        "beyond.csv": _beyond_frame(records, results_dir if have else None),
        "xmodal.csv": xmodal.summary_frame(load_xmodal_results(results_dir) if have else []),
    }
    if frames["xmodal.csv"].columns.empty:  # no text-image run: the file still says what it would hold
        frames["xmodal.csv"] = pd.DataFrame(columns=["model", "seeds", "test products", *xmodal.TABLE_METRICS])
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, df in frames.items():
        with_provenance(df, records).to_csv(out / name, index=False, float_format="%.6g")
        files[PAGE_DOWNLOADS[name]] = out / name
    return files


def downloads_md(files: dict[str, Path], root: Path, records: list[dict], stages: dict[str, Any] | None) -> str:
    """Download links (``{download}`` role, paths relative to the book root) and the two tables."""
    links = "\n".join(f"- {{download}}`{p.name} <{p.relative_to(root).as_posix()}>`: {label}"
                      for label, p in files.items())
    env = md_table(environment(records))
    st = stages_frame(stages or {})
    times = (md_table(st) + "\n\nThe `book` time is the previous build's (this page is part of the current one)."
             if len(st) else "No stage times recorded (`cti-repro reproduce` records them).")
    return f"{links}\n\n**Environment**\n\n{env}\n\n**Stage times**\n\n{times}\n"


__all__ = ["DEMO_HEADLINE", "table1_md", "PROVENANCE_COLUMNS", "record_provenance", "with_provenance", "encoders_that_ran", "PAGE_DOWNLOADS",
           "write_page_downloads", "build_md", "headline_md", "pages_md", "rows_md", "environment", "per_seed_metrics", "stages_frame",
           "write_downloads", "downloads_md", "md_table", "METRICS"]
