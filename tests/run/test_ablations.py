"""The sensitivity study end to end on the smoke profile: variants' rows, the comparison table."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cti_repro.cli import main
from cti_repro.config import load_config
from cti_repro.report import ablations
from cti_repro.results import read_result, result_path
from cti_repro.run.ablations import ablation_dir, run_ablations, select
from cti_repro.run.row import run_row
from cti_repro.study import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def study(tmp_path_factory, smoke_study, smoke_features):
    from tests.smoke import seed_from_session

    tmp = tmp_path_factory.mktemp("abl")
    raw = yaml.safe_load((ROOT / "_config.yml").read_text())
    raw["profiles"]["smoke"].update(results_dir=str(tmp / "runs"), cache_dir=str(tmp / "cache"),
                                    data={**raw["profiles"]["smoke"]["data"], "dir": str(tmp / "data")})
    raw["ablations"] = {"models": ["CLIP-I"], "run": ["tau_0.1"], "variants": {
        "tau_0.1": {"loss.tau": 0.1},
        "bm25_all": {"eval.candidates": "all", "models": ["BM25"]},
        "broken": {"eval.candidates": "all"},  # a trained model over all products: refused, recorded
    }}
    path = tmp / "_config.yml"
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config("smoke", path)
    seed_from_session(smoke_study, smoke_features, cfg)  # the session's catalogue and features, copied
    for setting in SETTINGS:  # the default rows
        for model in ("CLIP-I", "BM25"):
            run_row(setting, model, cfg=cfg, progress=False)
    failed = run_ablations("smoke", ["tau_0.1", "bm25_all", "broken"], path)
    return tmp, path, cfg, failed


def test_variant_rows_land_in_their_folder(study):
    tmp, path, cfg, failed = study
    assert [v.name for v in select(None, path)] == ["tau_0.1"] and len(select(["all"], path)) == 3
    for setting in SETTINGS:
        rec = read_result(result_path(ablation_dir(tmp / "runs", "tau_0.1"), setting, "CLIP-I", 0))
        assert rec["status"] == "ok" and rec["config"]["loss"]["tau"] == 0.1
        bm = read_result(result_path(ablation_dir(tmp / "runs", "bm25_all"), setting, "BM25", 0))
        default = read_result(result_path(tmp / "runs", setting, "BM25", 0))
        assert bm["ranking"]["candidates"] == "all" and bm["ranking"]["n_candidates"] == bm["data"]["products"]
        assert default["ranking"]["n_candidates"] < bm["ranking"]["n_candidates"]
        assert bm["queries"] == default["queries"]
    # the broken variant failed row by row with the reason, the others ran
    assert len(failed) == 3 and all("baselines only" in f for f in failed)


def test_rerun_skips_current_rows(study, capsys):
    tmp, path, cfg, _ = study
    assert run_ablations("smoke", ["tau_0.1"], path) == []
    assert "0 rows to run, 3 current" in capsys.readouterr().out


def test_ablation_table_pairs_queries_and_seeds(study):
    tmp, path, cfg, _ = study
    t = ablations.ablation_table(tmp / "runs")
    assert set(t.variant) == {"tau_0.1", "bm25_all"}
    r = t[(t.variant == "tau_0.1") & (t.setting == "most_specific") & (t.metric == "P@1")].iloc[0]
    var = read_result(result_path(ablation_dir(tmp / "runs", "tau_0.1"), "most_specific", "CLIP-I", 0))
    base = read_result(result_path(tmp / "runs", "most_specific", "CLIP-I", 0))
    d = np.asarray(var["per_query"]["P@1"]) - np.asarray(base["per_query"]["P@1"])
    assert r["diff"] == pytest.approx(d.mean()) and r.variant_mean - r.default == pytest.approx(r["diff"])
    assert r.ci_lo <= r["diff"] <= r.ci_hi and r.n_queries == len(d) and r.n_seeds == 1
    assert "loss.tau=0.1" in r.overrides
    wide = ablations.ablation_wide(t)
    assert len(wide) == 2 * 6 and "Most specific category" in wide.columns
    fig = ablations.ablation_figure(t)
    assert len(fig.axes) == 3


def test_cli_run_with_set_never_overwrites_the_default(study, capsys):
    tmp, path, cfg, _ = study
    assert main(["run", "--setting", "all", "--model", "BM25", "--profile", "smoke", "--config", str(path),
                 "--set", "bm25.k1=0.9"]) == 0
    out = json.loads(capsys.readouterr().out)["result"]
    assert "/overrides/" in out and read_result(out)["config"]["bm25"]["k1"] == 0.9
    assert read_result(result_path(tmp / "runs", "all", "BM25", 0))["config"]["bm25"]["k1"] == 1.5
