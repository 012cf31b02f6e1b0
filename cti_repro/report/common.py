"""Small helpers every report module shares: number formatting, record filters, study order."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.figure import Figure

from cti_repro.study import MODELS, SETTINGS


def fmt(x: float | None, digits: int = 2) -> str:
    """``x`` at ``digits`` decimals (rounded), ``—`` if missing or not finite."""
    return f"{x:.{digits}f}" if x is not None and np.isfinite(x) else "—"


def ok_records(records: list[dict]) -> list[dict]:
    """The successful records (``status`` ``ok``; records without a status are old successes)."""
    return [r for r in records if r.get("status", "ok") == "ok"]


def study_order(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Unique ``(setting, model)`` keys in the study's order; unknown names last, alphabetically."""
    def rank(k: tuple[str, str]) -> tuple:
        s, m = k
        return (SETTINGS.index(s) if s in SETTINGS else 99, s, MODELS.index(m) if m in MODELS else 99, m)
    return sorted(set(keys), key=rank)


MISSING_IMAGES_FLAG = 0.01  # flag image-based rows when more than 1% of the images could not be read


def missing_images(record: dict) -> tuple[int, int, bool]:
    """``(unreadable, total, flagged)`` images behind a record's image features (zero vectors);
    ``flagged`` when the model uses images and more than :data:`MISSING_IMAGES_FLAG` are missing."""
    from cti_repro.study import FEATURES_BY_MODEL

    st = record.get("feature_stats") or {}
    n, total = int(st.get("images_unreadable", 0) or 0), int(st.get("images_total", 0) or 0)
    total = total or int((record.get("data") or {}).get("products", 0) or 0)
    uses = "image" in FEATURES_BY_MODEL.get(record.get("model"), ())
    return n, total, bool(uses and total and n / total > MISSING_IMAGES_FLAG)


def empty_figure(message: str, size: tuple[float, float] = (6, 1.5)) -> Figure:
    """A figure holding only ``message`` (what a page shows when there is nothing to plot)."""
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


__all__ = ["fmt", "ok_records", "study_order", "empty_figure", "missing_images", "MISSING_IMAGES_FLAG"]
