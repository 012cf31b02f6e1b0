"""Every published number the report sets beside ours, read from one file.

``cti_repro/resources/published.yml`` holds the paper's Table 1 (percent), Table 2 (error
counts), Table 3 (seen / unseen), its data-set statistics and the category counts of the three
settings, and Rubio et al.'s (2017) cross-modal table. Nothing else in the package types a
published number.

Example:
    >>> from cti_repro.report import paper
    >>> paper.table1().head(2)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pandas as pd

from cti_repro.study import METRICS

PUBLISHED = Path(__file__).resolve().parent.parent / "resources" / "published.yml"


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def published(path: str | Path | None = None) -> dict[str, Any]:
    """The whole published-numbers file as a dict (see the module docstring for its sections)."""
    return _load(str(path or PUBLISHED))


def citation() -> str:
    """The paper these numbers come from."""
    return published()["source"]


def table1(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's Table 1 (percent): columns ``setting, model`` and the six metrics, in its order.

    Args:
        path: a CSV with the same columns (``setting, model, P@1, ...``) or a YAML file in this
            module's format; default: the packaged file.
    """
    if path is not None and str(path).endswith(".csv"):
        return pd.read_csv(path)
    return pd.DataFrame(published(path)["table1"], columns=["setting", "model", *METRICS])


def table2() -> dict[str, dict[str, int]]:
    """Table 2: CLIP-ITA's wrong top-1 results in the same / a different tree, per setting."""
    return published()["table2"]


def table2_total() -> dict[str, int]:
    """Table 2's total row as printed (its same-tree total is 2 more than its rows add up to)."""
    return published()["table2_total"]


def table2_depth_shares() -> dict[str, dict[str, float]]:
    """Shares (percent) of same-tree errors by ``d = depth(predicted) - depth(target)`` from section 5."""
    return published()["table2_depth_shares"]


def table3() -> dict[tuple[str, str], dict[str, float]]:
    """Table 3: CLIP-ITA on unseen / seen categories, ``{(setting, subset): {metric: value}}``."""
    return {(r["setting"], r["subset"]): {m: float(r[m]) for m in METRICS} for r in published()["table3"]}


def dataset() -> dict[str, float]:
    """The statistics of the paper's XMarket US subset (section 4, "Dataset")."""
    return dict(published()["dataset"])


def setting_categories() -> dict[str, int]:
    """Categories per setting as Table 1's section headers give them (5,471 / 34 / 4,100)."""
    return dict(published()["setting_categories"])


def rubio2017() -> pd.DataFrame:
    """Rubio et al. (2017), Table 1: median rank in percent of the test set, img->txt and txt->img."""
    return pd.DataFrame(published()["rubio2017"]["table1"])


__all__ = ["PUBLISHED", "published", "citation", "table1", "table2", "table2_total", "table2_depth_shares", "table3",
           "dataset", "setting_categories", "rubio2017"]
