"""What an XMarket import recorded in ``catalogue.json``, in the form results and the book show.

The importer writes the source, the file categories and every count (records read, kept, dropped
per reason, malformed / blank / duplicate lines, images) into the catalogue's meta. Results carry
this summary (``data.import``) so a results page can prove which subset of XMarket it ran on.
"""

from __future__ import annotations

from typing import Any

# the summary fields copied into each result (all ints); "dropped" and "images" are per-reason dicts
_COUNTS = ("files", "lines", "records", "kept", "malformed", "blank", "duplicates", "file_errors",
           "files_failed", "path_elements_dropped")


def import_provenance(meta: dict[str, Any]) -> dict[str, Any]:
    """The import's identity and counts from a catalogue's meta; ``{}`` if it is no XMarket import.

    Args:
        meta: ``Catalogue.meta`` (``catalogue.json``).

    Returns:
        ``source``, ``market``, ``complete``, ``categories`` (the file categories imported),
        ``categories_of`` (how many XMarket has), ``filters`` (``min_attributes``, ``min_depth``), the counts of :data:`_COUNTS`, ``dropped`` and
        ``images`` (per reason / status); counts absent from an older or interrupted import are
        left out.
    """
    if "market" not in meta:  # synthetic and hand-made catalogues
        return {}
    from cti_repro.data.xmarket import XMARKET_CATEGORIES

    summary = meta.get("summary") or {}
    out: dict[str, Any] = {
        "source": str(meta.get("source", "")), "market": meta.get("market"),
        "complete": meta.get("complete"), "categories": list(meta.get("categories") or []),
        "categories_of": len(XMARKET_CATEGORIES),
        "filters": dict(meta.get("filters") or {"min_attributes": 1, "min_depth": 2}),
    }
    out.update({k: int(summary[k]) for k in _COUNTS if isinstance(summary.get(k), (int, float))})
    for k in ("dropped", "images"):
        if isinstance(summary.get(k), dict):
            out[k] = {str(r): int(n) for r, n in summary[k].items()}
    return out


def describe_import(info: dict[str, Any]) -> str:
    """One line for a person: source, categories "3 of 16", records kept / dropped by reason.

    Example:
        >>> describe_import({"source": "/data/xm", "market": "us", "categories": ["Books"],
        ...                  "categories_of": 16, "records": 10, "kept": 8, "dropped": {"no_title": 2}})
        'XMarket us market from /data/xm; file categories: 1 of 16 (Books); 10 records read, 8 kept; dropped: no_title 2'
    """
    if not info:
        return ""
    cats = info.get("categories") or []
    parts = [f"XMarket {info.get('market')} market from {info.get('source')}",
             f"file categories: {len(cats)} of {info.get('categories_of', '?')} ({', '.join(cats)})"]
    f = info.get("filters") or {}
    if f.get("min_attributes", 1) > 1 or f.get("min_depth", 2) > 2:
        parts.append(f"filters: >= {f.get('min_attributes', 1)} attributes, depth >= {f.get('min_depth', 2)}")
    if info.get("complete") is False:
        parts.append("import INCOMPLETE")
    if "records" in info:
        parts.append(f"{info['records']:,} records read, {info.get('kept', 0):,} kept")
    dropped = {r: n for r, n in (info.get("dropped") or {}).items() if n}
    if dropped:
        parts.append("dropped: " + ", ".join(f"{r} {n:,}" for r, n in dropped.items()))
    lines = [f"{info[k]:,} {k.replace('_', ' ')}" for k in ("malformed", "blank", "duplicates", "file_errors",
                                                             "files_failed") if info.get(k)]
    if lines:
        parts.append("skipped: " + ", ".join(lines))
    return "; ".join(parts)


__all__ = ["describe_import", "import_provenance"]
