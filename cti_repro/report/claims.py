"""The paper's qualitative claims, checked on a build's Table 1: the headline of the results page.

Each claim is an ordering of models (``CLIP-ITA > CLIP-IA > CLIP-I``; the best multimodal model
above the best unimodal one) that is tested per setting on each of the six metrics, on the
published values and on ours (mean over seeds). A claim *holds* in a setting when the ordering
is strict on every metric, *holds on k of 6* when on some, *fails* when on none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cti_repro.report.common import fmt
from cti_repro.study import BASELINES, METRICS, SETTINGS, TRAINED

UNIMODAL: tuple[str, ...] = (*BASELINES, "CLIP-I")   # one modality on the product side
MULTIMODAL: tuple[str, ...] = ("CLIP-IA", "CLIP-ITA")  # image + attributes (+ title)


@dataclass(frozen=True)
class Claim:
    """An ordering of groups of models: each group's best value above the next group's best."""

    name: str
    groups: tuple[tuple[str, ...], ...]

    def holds(self, values: dict[str, float]) -> bool | None:
        """True if strictly ordered, False if not, None if a group has no value."""
        best = []
        for g in self.groups:
            vals = [values[m] for m in g if m in values and np.isfinite(values[m])]
            if not vals:
                return None
            best.append(max(vals))
        return all(a > b for a, b in zip(best, best[1:]))

    def evidence(self, values: dict[str, float]) -> str:
        """``"CLIP-ITA 12.30 > CLIP-IA 10.00"``: the best model of each group and its value."""
        parts = []
        for g in self.groups:
            have = {m: values[m] for m in g if m in values and np.isfinite(values[m])}
            if not have:
                return "—"
            m = max(have, key=have.get)
            parts.append(f"{m} {fmt(have[m])}")
        return " vs ".join(parts)


CLAIMS: tuple[Claim, ...] = (
    Claim("CLIP-ITA > CLIP-IA > CLIP-I", tuple((m,) for m in reversed(TRAINED))),
    Claim("multimodal (best of CLIP-IA, CLIP-ITA) > unimodal (best of BM25, CLIP, MPNet, CLIP-I)",
          (MULTIMODAL, UNIMODAL)),
    Claim("trained CLIP-I > zero-shot CLIP", (("CLIP-I",), ("CLIP",))),
)


def _tally(claim: Claim, t: pd.DataFrame, column: str) -> tuple[int, int, list[str]]:
    """(metrics where it holds, metrics with values, evidence of the failing ones)."""
    ok, n, failing = 0, 0, []
    for metric in METRICS:
        g = t[t.metric == metric]
        values = dict(zip(g.model, g[column].astype(float)))
        h = claim.holds(values)
        if h is None:
            continue
        n += 1
        ok += h
        if not h:
            failing.append(f"{metric}: {claim.evidence(values)}")
    return ok, n, failing


def claims_table(t1: pd.DataFrame) -> pd.DataFrame:
    """Each claim in each setting, on the paper's numbers and on ours.

    Args:
        t1: :func:`cti_repro.report.table1` (columns ``setting, model, metric, published, mean``).

    Returns:
        Columns ``claim, setting, paper, ours, verdict, evidence``: ``paper`` / ``ours`` read
        ``"6/6"`` (metrics where the ordering is strict, of those with values); ``verdict`` is
        ``holds`` (every metric), ``partly``, ``fails`` (none) or ``not run``; ``evidence``
        names the metrics where ours does not hold, with the values compared.
    """
    rows = []
    for claim in CLAIMS:
        for setting in SETTINGS:
            t = t1[t1.setting == setting]
            p_ok, p_n, _ = _tally(claim, t, "published")
            o_ok, o_n, failing = _tally(claim, t, "mean")
            verdict = ("not run" if o_n == 0 else "holds" if o_ok == o_n else "fails" if o_ok == 0 else "partly")
            rows.append({"claim": claim.name, "setting": setting, "paper": f"{p_ok}/{p_n}",
                         "ours": f"{o_ok}/{o_n}" if o_n else "—", "verdict": verdict,
                         "evidence": "; ".join(failing) if failing else ("" if o_n else "no results")})
    return pd.DataFrame(rows, columns=["claim", "setting", "paper", "ours", "verdict", "evidence"])


__all__ = ["Claim", "CLAIMS", "UNIMODAL", "MULTIMODAL", "claims_table"]
