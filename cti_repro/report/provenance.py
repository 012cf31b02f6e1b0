"""Where a study's numbers come from: the provenance box at the top of every results page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from cti_repro.data.import_meta import describe_import
from cti_repro.report.commands import shown_path
from cti_repro.report.common import missing_images, ok_records
from cti_repro.report.reproduction import reproduces, reproduction_gaps
from cti_repro.report.styles import admonition
from cti_repro.study import SETTING_LABELS, SETTINGS

DEMO_WARNING = ("Pipeline demonstration (not the paper's data, weights or protocol) — "
                "these numbers are NOT a reproduction of the paper.")


def demonstration_reasons(p: dict[str, Any]) -> str:
    """Why a :func:`provenance` is a demonstration, naming only what holds: "the catalogue is
    synthetic", "the image encoder ViT-B-32 has random weights" (each such encoder by role and name), both,
    or that the records are marked so."""
    rnd = p.get("random_encoders") or []
    has = "have" if len(rnd) > 1 else "has"
    why = (["the catalogue is synthetic"] if p.get("synthetic") else []) + (
        ([f"the {' and the '.join(rnd)} {has} random weights"] if rnd else ["an encoder has random weights"])
        if p.get("random_weights") else [])
    if why:
        return " and ".join(why)
    return ("the set-up is not the paper's (below)" if p.get("gaps")
            else "the runs are marked as a demonstration (labels.demonstration)")


def demonstration_warning(p: dict[str, Any]) -> str:
    """The demonstration line of a provenance box, saying which of its reasons hold."""
    return f"Pipeline demonstration: {demonstration_reasons(p)} — these numbers are NOT a reproduction of the paper."


def _uniq(values) -> list:
    out = []
    for v in values:
        if v is not None and v not in out:
            out.append(v)
    return out


def provenance(records: list[dict]) -> dict[str, Any]:
    """Where the numbers of a study come from: data, encoders, seeds, commits, dates, hardware.

    ``demonstration`` is true unless every successful record reproduces the paper's set-up
    (:func:`cti_repro.report.reproduction.reproduces`: what ran decides; the label can only add
    caution); ``gaps`` lists why not (:func:`~cti_repro.report.reproduction.reproduction_gaps`).
    """
    ok = ok_records(records)
    encoders, random_weights, random_encoders = [], False, []
    for r in ok:
        for role, e in (r.get("encoders") or {}).items():
            desc = f"{role}: {e.get('name')} ({e.get('weights')}; pretrained: {'yes' if e.get('pretrained') else 'NO'}"
            if (arch := e.get("architecture")) and arch.get("activation"):
                desc += f"; {arch['activation']}"
            if e.get("sha256"):
                desc += f"; {Path(str(e.get('checkpoint', ''))).name} sha256 {e['sha256'][:12]}"
            desc += ")"
            encoders.append(desc)
            if not e.get("pretrained", True):
                random_weights = True
                random_encoders.append(f"{role} encoder {e.get('name')}")

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
        # the XMarket import each catalogue came from: source, file categories, drop counts
        "imports": _uniq(describe_import((r.get("data") or {}).get("import") or {}) or None for r in ok),
        "products": _uniq((r.get("data") or {}).get("products") for r in ok),
        "queries": {s: _uniq((r.get("data") or {}).get("test_queries") for r in ok if r.get("setting") == s)
                    for s in SETTINGS},
        "encoders": sorted(_uniq(encoders)),
        "random_weights": random_weights,
        "random_encoders": _uniq(random_encoders),  # "image encoder ViT-B-32": what the reasons name
        "seeds": sorted(_uniq(r.get("seed") for r in records)),
        "git_commits": _uniq(r.get("git_commit") for r in ok),
        "dates": (dates[0], dates[-1]) if dates else None,
        "results_dirs": _uniq(str(Path(r["_path"]).parent.parent) for r in records if r.get("_path")),
        "hardware": _uniq(hw(r) for r in ok),
        "config_hashes": _uniq(r.get("config_hash") for r in ok),
        "data_fingerprints": _uniq(r.get("data_fingerprint") for r in ok),
        "demonstration": any(r.get("demonstration") for r in records) or any(not reproduces(r) for r in ok),
        "gaps": _uniq(g for r in ok for g in reproduction_gaps(r)),
        "synthetic": any((r.get("data") or {}).get("source") == "synthetic" for r in ok),
        "missing_images": max((missing_images(r)[:2] for r in ok), default=(0, 0)),
        "missing_images_flagged": sorted({f"{r['setting']} {r['model']}" for r in ok if missing_images(r)[2]}),
    }


def provenance_html(records: list[dict]) -> str:
    """The provenance box at the top of every results page (an admonition; inline colours too)."""
    p = provenance(records)
    esc = lambda x: html.escape(str(x))  # noqa: E731
    kind = "warning" if p["demonstration"] or not records else "note"
    lines = []
    if p["demonstration"]:
        lines.append(f'<p style="font-size:1.05em"><strong>{esc(demonstration_warning(p))}</strong></p>')
        if p["gaps"]:
            lines.append("<p>Why: " + "; ".join(esc(g) for g in p["gaps"]) + ".</p>")
    if not records:
        lines.append("<p><strong>No result records were found</strong>: every row below reads “not run”.</p>")
    queries = "; ".join(f"{SETTING_LABELS[s].lower()}: {', '.join(map(str, q))}" for s, q in p["queries"].items() if q)
    items = [
        ("Data", ", ".join(p["data_source"]) or "—"),
        *([("Import", "<br>".join(esc(i) for i in p["imports"]))] if p["imports"] else []),
        ("Catalogue", ", ".join(f"{n:,} products" for n in p["products"]) + (f" ({queries} test queries)" if queries else "")),
        ("Encoders", "<br>".join(esc(e) for e in p["encoders"]) or "—"),
        ("Seeds", ", ".join(map(str, p["seeds"])) or "—"),
        ("Runs", f"{p['ok']} ok, {p['failed']} failed (profile {', '.join(map(str, p['profiles'])) or '—'})"),
        ("Git commit", ", ".join(p["git_commits"][:3]) + (f" (+{len(p['git_commits']) - 3} more)"
                                                         if len(p["git_commits"]) > 3 else "") or "—"),
        ("Date", " … ".join(dict.fromkeys(p["dates"])) if p["dates"] else "—"),
        ("Hardware", "; ".join(p["hardware"]) or "—"),
        # relative to the kernel's working directory (the repository): never the build machine's path
        ("Results folder", ", ".join(shown_path(d, Path.cwd()) for d in p["results_dirs"]) or "—"),
        ("Images unreadable", f"{p['missing_images'][0]:,} of {p['missing_images'][1]:,}"
         + (f" (more than 1%: FLAGGED for {', '.join(p['missing_images_flagged'])})" if p["missing_images_flagged"] else "")),
    ]
    if len(p["config_hashes"]) > 1 or len(p["data_fingerprints"]) > 1:
        items.append(("Caution", f"{len(p['config_hashes'])} configs / {len(p['data_fingerprints'])} catalogues "
                                 "are mixed in these results"))
    rows = "".join(f'<tr><th style="text-align:left;padding-right:1em;vertical-align:top">{k}</th>'
                   f"<td style='text-align:left'>{v if k in ('Encoders', 'Import') else esc(v)}</td></tr>" for k, v in items)
    return admonition(kind, "Provenance", f'{"".join(lines)}<table style="font-size:0.9em;border:none">{rows}</table>')


__all__ = ["demonstration_reasons", "demonstration_warning", "DEMO_WARNING", "provenance", "provenance_html"]
