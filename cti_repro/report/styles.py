"""How report pages look: the admonition box, verdict colours, legible tables.

One helper (:func:`admonition`) draws every coloured box of the book (provenance, the
demonstration warning, a changed catalogue), with sphinx-book-theme's classes and inline colours
so it also reads in plain Jupyter.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from cti_repro.report.common import fmt

ADMONITION_COLOURS = {"warning": "#f0b37e", "danger": "#e74c3c", "note": "#6ab0de", "tip": "#1abc9c"}
OK_COLOUR, WRONG_COLOUR = "#1a9641", "#d7191c"
# One colour per model in every figure: Okabe-Ito, colour-blind safe, no two models alike.
MODEL_COLOURS: dict[str, str] = {"BM25": "#999999", "CLIP": "#E69F00", "MPNet": "#56B4E9",
                                 "CLIP-I": "#009E73", "CLIP-IA": "#0072B2", "CLIP-ITA": "#D55E00"}
# demonstration: a neutral blue-grey, so a demonstration cell never reads as a pass (green)
VERDICT_COLOURS = {"consistent": "#d9f2d9", "inconclusive": "#f3efd9", "higher": "#fde2c0", "lower": "#f8d7da", "demonstration": "#e3e8f0",
                   "FAILED": "#e0e0e0", "not run": "#f2f2f2", "n/a": "#ffffff"}


def admonition(kind: str, title: str, body_html: str) -> str:
    """An admonition box as HTML.

    Args:
        kind: ``warning``, ``danger``, ``note`` or ``tip`` (the box's class and colour).
        title: plain text (escaped here).
        body_html: the box's content, already HTML (escape catalogue strings before passing them).

    Returns:
        A ``<div class="admonition KIND">`` string; display it with ``IPython.display.HTML``.
    """
    colour = ADMONITION_COLOURS[kind]
    return (f'<div class="admonition {kind}" style="border-left:4px solid {colour};padding:.4em .8em;margin-bottom:1em">'
            f'<p class="admonition-title" style="font-weight:bold">{html.escape(title)}</p>{body_html}</div>')


def styled(df: pd.DataFrame, digits: int = 2, formats: dict[str, Any] | None = None, caption: str | None = None) -> Any:
    """A legible Styler: floats at ``digits`` decimals, NaN as ``—``, no index column, text escaped.

    Args:
        df: the table.
        digits: decimals of float columns.
        formats: per-column formats (format strings or callables) that override the default.
        caption: a caption above the table.
    """
    fmts: dict[str, Any] = {c: (lambda v, d=digits: fmt(v, d)) for c in df.columns if pd.api.types.is_float_dtype(df[c])}
    fmts.update(formats or {})
    # escape every cell first (catalogue strings must never reach the page as markup), then format
    st = df.style.format(na_rep="—", escape="html").format(fmts, na_rep="—", escape="html").hide(axis="index")
    # the Styler leaves header labels raw: escape column (and index, if un-hidden) labels too
    st = st.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    st = st.set_table_styles([{"selector": "th", "props": "text-align: center; font-size: 0.85em; padding: 0.2em 0.5em"},
                              {"selector": "td", "props": "font-size: 0.85em; padding: 0.2em 0.5em; white-space: nowrap"}])
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    st = st.set_properties(subset=text, **{"text-align": "left"}) if text else st
    nums = [c for c in df.columns if c not in text]
    st = st.set_properties(subset=nums, **{"text-align": "right"}) if nums else st
    return st.set_caption(html.escape(caption)) if caption else st


def mpl_text(text: object) -> str:
    """``text`` for a matplotlib label: ``$`` escaped, so a catalogue string is never parsed as mathtext
    (a category like ``$\\frac{`` would otherwise make the figure fail to draw)."""
    return str(text).replace("$", r"\$")


__all__ = ["mpl_text", "admonition", "styled", "ADMONITION_COLOURS", "MODEL_COLOURS", "VERDICT_COLOURS", "OK_COLOUR", "WRONG_COLOUR"]
