"""Reader aids around Table 1: the queries each setting evaluates here, the chance level, and the
compact published-beside-ours table of the results page.

Chance level: a ranking drawn uniformly at random puts a relevant product at any rank with
probability R_q / N (R_q relevant among N test products). Its expected precision at every cut-off,
P@k and R-precision alike, is therefore R_q / N, and averaged over the Q test queries of a setting
it is exactly 1 / Q, since every test product is relevant to exactly one query (sum of R_q = N).
MAP@k has no such closed form (it depends on each R_q), so the chance row leaves it blank.
"""

from __future__ import annotations

import pandas as pd

from cti_repro.report.common import fmt, ok_records
from cti_repro.study import METRICS, SETTING_LABELS, SETTINGS

PRECISION_METRICS = ("P@1", "P@5", "P@10", "R-precision")  # the metrics whose chance level is 1 / Q
CHANCE_LABEL = "chance (random ranking)"


def test_queries(records: list[dict], setting: str) -> list[int]:
    """The distinct numbers of test queries the successful runs of ``setting`` evaluated."""
    return sorted({int((r.get("data") or {}).get("test_queries") or len(r.get("queries") or []))
                   for r in ok_records(records) if r.get("setting") == setting} - {0})


def chance_level(queries: int) -> dict[str, float]:
    """The expected value (percent) of each precision metric under a random ranking over ``queries``
    test queries (see the module docstring); MAP@k is not included."""
    return {m: 100.0 / queries for m in PRECISION_METRICS} if queries > 0 else {}


def queries_line(records: list[dict], setting: str, paper_categories: str) -> str:
    """One Markdown line under a setting's heading: the paper's category count, the queries this
    build evaluated, and the chance level of P@k / R-precision over them."""
    q = test_queries(records, setting)
    if not q:
        return f"{paper_categories} categories in the paper; no run of this setting in this build."
    chance = " / ".join(f"{100 / n:.2f}" for n in q)
    return (f"{paper_categories} categories in the paper; **{' / '.join(f'{n:,}' for n in q)} test queries** evaluated "
            f"here (the categories of the test pairs). A random ranking scores {chance} on P@k and R-precision "
            "(1 / queries): a model near that value is at chance.")


def compact_table1(t1: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """Table 1 as the paper prints it, ours beside: one line per (setting, model), each metric's
    cell ``published / ours`` (mean over seeds; ``FAILED`` / ``not run``), and per setting a
    chance line (``— / 10.00``, see :func:`chance_level`)."""
    rows = []
    for setting in SETTINGS:
        t = t1[t1.setting == setting]
        for model in dict.fromkeys(t.model):
            cells = {}
            for r in t[t.model == model].itertuples():
                ours = {"failed": "FAILED", "not run": "not run"}.get(r.status, fmt(r.mean))
                cells[r.metric] = f"{fmt(r.published)} / {ours}"
            rows.append({"setting": SETTING_LABELS.get(setting, setting), "model": model, **cells})
        q = test_queries(records, setting)
        if len(q) == 1:
            rows.append({"setting": SETTING_LABELS.get(setting, setting), "model": CHANCE_LABEL,
                         **{m: f"— / {fmt(v)}" for m, v in chance_level(q[0]).items()}})
    return pd.DataFrame(rows, columns=["setting", "model", *METRICS]).fillna("—")


__all__ = ["PRECISION_METRICS", "CHANCE_LABEL", "test_queries", "chance_level", "queries_line", "compact_table1"]
