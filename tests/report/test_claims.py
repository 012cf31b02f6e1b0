"""The headline claims and the per-page commands, on hand-made tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cti_repro.report import book_pages, claims, table1
from cti_repro.report.claims import claims_table
from cti_repro.report.commands import papermill_command, report_commands, row_commands
from cti_repro.study import METRICS, SETTINGS
from tests.report.test_tables import make_record


QUERIES = [f"category {i}" for i in range(30)]
LEVELS = {"BM25": 1, "CLIP": 10, "MPNet": 20, "CLIP-I": 30, "CLIP-IA": 40, "CLIP-ITA": 50}


def _records(levels: dict[str, float], seeds=(0, 1, 2), noise: float = 3.0, **extra) -> list[dict]:
    """Every setting, model and seed: per-query scores ``levels[model]`` plus noise, every metric."""
    rng = np.random.default_rng(0)
    return [make_record(s, m, seed, {k: levels[m] + rng.normal(0, noise, len(QUERIES)) for k in METRICS},
                        queries=QUERIES, **extra)
            for s in SETTINGS for m in levels for seed in seeds]


def _claims(records: list[dict]) -> pd.DataFrame:
    return claims_table(table1(records), records).set_index(["claim", "setting"])


def test_claims_hold_on_intervals_in_the_papers_settings():
    t = _claims(_records(LEVELS))
    assert (t.verdict == "holds").all() and (t.ours == "6/6").all()
    # the paper's own claims, where it makes them: CLIP-IA > CLIP-I is not claimed for all categories
    # (the paper's CLIP-IA is below CLIP-I there), CLIP-I > MPNet not for most specific
    assert ("CLIP-IA > CLIP-I", "all") not in t.index and ("CLIP-IA > CLIP-I", "most_general") in t.index
    assert ("CLIP-I > MPNet", "most_specific") not in t.index
    assert (t.paper == "6/6").all()  # each claim holds on the paper's numbers where the paper makes it
    assert claims.TEXT_ONLY == ("BM25", "MPNet") and "CLIP" in claims.MULTIMODAL  # the paper's groups


def test_means_alone_do_not_make_a_claim_hold():
    t = _claims(_records({**LEVELS, "CLIP-IA": 50.001, "CLIP-ITA": 50.0 + 0.002}))
    first = t.loc[("CLIP-ITA > CLIP-IA", "all")]
    assert first.verdict == "fails" and first.ours == "0/6"
    assert "CLIP-ITA − CLIP-IA" in first.evidence and "[" in first.evidence


def test_a_failed_model_makes_its_claims_not_run():
    recs = [r for r in _records(LEVELS) if not (r["model"] == "MPNet" and r["setting"] == "all")]
    recs.append(make_record("all", "MPNet", 0, status="failed"))
    t = _claims(recs)
    mm = t.loc[(claims.CLAIMS[-1].name, "all")]
    assert mm.verdict == "not run" and "MPNet" in mm.evidence and mm.ours == "—"
    assert t.loc[("CLIP-I > MPNet", "all")].verdict == "not run"
    assert t.loc[(claims.CLAIMS[-1].name, "most_general")].verdict == "holds"


def test_a_reversed_order_fails_and_the_demonstration_headline_says_so():
    recs = _records({**LEVELS, "CLIP-IA": 25})
    t = _claims(recs)
    assert t.loc[("CLIP-IA > CLIP-I", "most_general")].verdict == "fails"
    assert book_pages.headline_md(table1(recs), recs).startswith("Of the paper's")
    demo = _records(LEVELS, demonstration=True)
    first = book_pages.headline_md(table1(demo), demo).splitlines()[0]
    assert first == book_pages.DEMO_HEADLINE and "not evidence about the paper" in first


def test_claims_without_results():
    t = claims_table(table1([]), [])
    assert (t.verdict == "not run").all() and (t.ours == "—").all()
    assert book_pages.headline_md(table1([]), []).startswith("No Table 1 results")


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


def test_an_exact_tie_says_why_it_does_not_hold():
    # both at the ceiling on every query and seed (the embedded most-general CLIP-ITA and CLIP-IA):
    # "+0.00 [0.00, 0.00]" alone under "does not hold" gives the reader no reason
    recs = _records({**LEVELS, "CLIP-IA": 100.0, "CLIP-ITA": 100.0}, noise=0.0)
    ev = _claims(recs).loc[("CLIP-ITA > CLIP-IA", "most_general")].evidence
    assert "CLIP-ITA − CLIP-IA +0.00 [0.00, 0.00] (equal on every query and seed: both 100.00)" in ev
    assert "equal on every query" not in _claims(_records(LEVELS)).loc[("CLIP-ITA > CLIP-IA", "all")].evidence
