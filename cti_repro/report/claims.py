"""The paper's own claims, checked on a build: the headline of the results page.

Each claim is one the paper makes, in the settings where it makes it (``PAPER_NOTES.md``, "Stated
findings"; the abstract and [VI] section 5), with the paper's groups of models: text-only BM25
and MPNet (the slides' "text-only" baselines), multimodal CLIP and the three trained CLIP models.

- CLIP-ITA above CLIP-IA and CLIP-I, in all three settings (abstract; RQ4);
- CLIP-IA above CLIP-I and above MPNet, in the most-general and most-specific settings only (RQ3:
  in the all-categories setting CLIP-IA is below CLIP-I in the paper's own Table 1);
- CLIP-I above zero-shot CLIP in all three settings, above MPNet except in most-specific (RQ2);
- the best multimodal model above the best text-only one, in all three settings.

A claim is an ordering ``A > B``: on one metric it *holds* when the 95% interval of the
difference of the seeds x queries matrices (:func:`cti_repro.report.stats.matrix_test`) lies
above 0, for every pair it names (for groups: one model of the upper group above every model of
the lower one). Means alone (5.001 vs 5.000) never make a claim hold. In a setting a claim
*holds* (every metric), holds *partly*, *fails* (no metric), or is *not run* when a model it
names has no successful result: a failed model is never silently dropped from its group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cti_repro.report.common import fmt, ok_records
from cti_repro.report.stats import matrix_test, score_matrix
from cti_repro.study import METRICS, SETTINGS

TEXT_ONLY: tuple[str, ...] = ("BM25", "MPNet")                         # the slides' "text-only" baselines
MULTIMODAL: tuple[str, ...] = ("CLIP", "CLIP-I", "CLIP-IA", "CLIP-ITA")  # image and text encoders
VERDICT_COLUMNS = ["claim", "setting", "paper", "ours", "verdict", "evidence"]


@dataclass(frozen=True)
class Claim:
    """``upper`` above ``lower`` (groups: the best of ``upper`` above every model of ``lower``),
    claimed by the paper in ``settings``."""

    name: str
    upper: tuple[str, ...]
    lower: tuple[str, ...]
    settings: tuple[str, ...]
    source: str

    @property
    def models(self) -> tuple[str, ...]:
        return (*self.upper, *self.lower)

    def on_values(self, values: dict[str, float]) -> bool | None:
        """On point values (the published table): some upper model strictly above every lower one;
        None if a model has no value."""
        if not all(m in values and np.isfinite(values[m]) for m in self.models):
            return None
        return max(values[m] for m in self.upper) > max(values[m] for m in self.lower)


CLAIMS: tuple[Claim, ...] = (
    Claim("CLIP-ITA > CLIP-IA", ("CLIP-ITA",), ("CLIP-IA",), SETTINGS, "abstract; RQ4"),
    Claim("CLIP-ITA > CLIP-I", ("CLIP-ITA",), ("CLIP-I",), SETTINGS, "abstract; RQ4"),
    Claim("CLIP-IA > CLIP-I", ("CLIP-IA",), ("CLIP-I",), ("most_general", "most_specific"), "RQ3"),
    Claim("CLIP-IA > MPNet", ("CLIP-IA",), ("MPNet",), ("most_general", "most_specific"), "RQ3"),
    Claim("trained CLIP-I > zero-shot CLIP", ("CLIP-I",), ("CLIP",), SETTINGS, "RQ2"),
    Claim("CLIP-I > MPNet", ("CLIP-I",), ("MPNet",), ("all", "most_general"), "RQ2"),
    Claim("multimodal (best of CLIP, CLIP-I, CLIP-IA, CLIP-ITA) > text-only (best of BM25, MPNet)",
          MULTIMODAL, TEXT_ONLY, SETTINGS, "abstract; slides"),
)


def _holds_on(claim: Claim, records: list[dict], setting: str, metric: str) -> tuple[bool, str]:
    """Does some upper model's difference from every lower model have an interval above 0?

    Returns the answer and the evidence of the closest pair: ``"CLIP-ITA − CLIP-IA +1.20 [-0.3, +2.7]"``.
    """
    mats = {m: score_matrix(records, setting, m, metric) for m in claim.models}
    best: tuple[float, str] = (-math.inf, "")
    for u in claim.upper:
        tests = {lo: matrix_test(mats[u], mats[lo]) for lo in claim.lower}
        worst = min(tests, key=lambda lo: tests[lo]["lo"] if np.isfinite(tests[lo]["lo"]) else -math.inf)
        t = tests[worst]
        bound = t["lo"] if np.isfinite(t["lo"]) else -math.inf
        if bound > best[0] or not best[1]:
            best = (bound, f"{u} − {worst} {t['diff']:+.2f} [{fmt(t['lo'])}, {fmt(t['hi'])}]" + _tie_note(t))
    return best[0] > 0, best[1]


def _tie_note(t: dict) -> str:
    """Why an interval is exactly [0, 0]: the two models score the same on every query and seed.

    A reader otherwise sees "+0.00 [0.00, 0.00]" listed under "does not hold" with no reason; at
    a ceiling (both 100 in the most general setting) the data cannot order the models at all.
    """
    if t["lo"] == 0 and t["hi"] == 0 and t["diff"] == 0:
        return f" (equal on every query and seed: both {t['mean_a']:.2f})"
    return ""


def claims_table(t1: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """Each of the paper's claims in each setting where the paper makes it, on its numbers and ours.

    Args:
        t1: :func:`cti_repro.report.table1` (``setting, model, metric, published, status``).
        records: the build's result records (the per-query scores the intervals come from).

    Returns:
        Columns :data:`VERDICT_COLUMNS`: ``paper`` / ``ours`` read ``"6/6"`` (metrics where the
        ordering holds: strictly on the published values; with the interval of the difference
        above 0 on ours); ``verdict`` is ``holds`` (every metric), ``partly``, ``fails`` (none)
        or ``not run`` (a model of the claim has no successful result in that setting);
        ``evidence`` names the metrics where ours does not hold, with the closest difference.
    """
    ok = ok_records(records)
    rows = []
    for claim in CLAIMS:
        for setting in claim.settings:
            t = t1[t1.setting == setting]
            pub = [claim.on_values(dict(zip(g.model, g.published.astype(float)))) for _, g in t.groupby("metric")]
            pub = [h for h in pub if h is not None]
            ran = {m for m, st in zip(t.model, t.status) if st == "ok"}
            missing = [m for m in claim.models if m not in ran]
            if missing:
                rows.append({"claim": claim.name, "setting": setting, "paper": f"{sum(pub)}/{len(pub)}",
                             "ours": "—", "verdict": "not run",
                             "evidence": f"{', '.join(missing)}: no successful result"})
                continue
            results = {metric: _holds_on(claim, ok, setting, metric) for metric in METRICS}
            n_ok = sum(h for h, _ in results.values())
            verdict = "holds" if n_ok == len(METRICS) else "fails" if n_ok == 0 else "partly"
            rows.append({"claim": claim.name, "setting": setting, "paper": f"{sum(pub)}/{len(pub)}",
                         "ours": f"{n_ok}/{len(METRICS)}", "verdict": verdict,
                         "evidence": "; ".join(f"{m}: {ev}" for m, (h, ev) in results.items() if not h)})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


__all__ = ["Claim", "CLAIMS", "TEXT_ONLY", "MULTIMODAL", "VERDICT_COLUMNS", "claims_table"]
