"""The headline claims and the per-page commands, on hand-made tables."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from cti_repro.report.claims import claims_table
from cti_repro.report.commands import papermill_command, report_commands, row_commands
from cti_repro.study import METRICS, MODELS, SETTINGS


def _t1(values: dict[str, float], published: dict[str, float] | None = None) -> pd.DataFrame:
    """Every setting and metric gets ``values[model]`` as mean (and ``published[model]``)."""
    published = published or values
    return pd.DataFrame([{"setting": s, "model": m, "metric": k, "published": published.get(m, math.nan),
                          "mean": values.get(m, math.nan)} for s in SETTINGS for m in MODELS for k in METRICS])


def test_claims_hold_fail_and_partly():
    ok = {"BM25": 1, "CLIP": 2, "MPNet": 3, "CLIP-I": 4, "CLIP-IA": 5, "CLIP-ITA": 6}
    t = claims_table(_t1(ok))
    assert (t.verdict == "holds").all() and (t.ours == "6/6").all() and (t.paper == "6/6").all()
    # CLIP-IA below CLIP-I: the first claim fails, multimodal > unimodal still holds (CLIP-ITA 6 > 4)
    t = claims_table(_t1({**ok, "CLIP-IA": 3.5}, published=ok)).set_index(["claim", "setting"])
    first = t.loc[("CLIP-ITA > CLIP-IA > CLIP-I", "all")]
    assert first.verdict == "fails" and first.ours == "0/6" and first.paper == "6/6"
    assert "P@1: CLIP-ITA 6.00 vs CLIP-IA 3.50 vs CLIP-I 4.00" in first.evidence
    assert (t.xs("trained CLIP-I > zero-shot CLIP").verdict == "holds").all()
    # a tie is not a strict ordering; one metric apart: partly
    t1 = _t1(ok)
    t1.loc[(t1.model == "CLIP-I") & (t1.metric == "P@5"), "mean"] = 2.0  # = CLIP
    t = claims_table(t1).set_index(["claim", "setting"]).xs("trained CLIP-I > zero-shot CLIP")
    assert (t.verdict == "partly").all() and (t.ours == "5/6").all()


def test_claims_without_results():
    t = claims_table(_t1({}, published={"CLIP-I": 1, "CLIP-IA": 2, "CLIP-ITA": 3}))
    assert (t.verdict == "not run").all() and (t.ours == "—").all()


def test_row_and_report_commands(tmp_path):
    root = tmp_path
    c = row_commands("most_general", "CLIP-IA", "embedded", 2, str(root / "runs" / "embedded"),
                     str(root / "_config.yml"), root=root)
    assert c["cti-repro"] == ("cti-repro run --setting most_general --model CLIP-IA --profile embedded --seed 2 "
                              "--config _config.yml --out runs/embedded --force")  # reruns, not the cached result
    assert c["papermill"] == ("papermill book/templates/row.ipynb row_out.ipynb -p setting most_general -p model "
                              "CLIP-IA -p profile embedded -p seed 2 -p results_dir runs/embedded -p config_path "
                              "_config.yml")
    r = report_commands("report_table1", "xmarket", root=root)
    assert r == {"cti-repro": "cti-repro report --profile xmarket",
                 "papermill": "papermill book/templates/report_table1.ipynb report_table1_out.ipynb -p profile xmarket"}
    # outside the repository a path stays absolute; spaces are quoted
    assert papermill_command("row", {"results_dir": "/elsewhere/my runs"}, root=Path("/repo")).endswith(
        "-p results_dir '/elsewhere/my runs'")
