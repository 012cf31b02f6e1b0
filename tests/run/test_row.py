"""CPU smoke runs of the real entry point (`cti-repro run`) on the `smoke` profile."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cti_repro.cli import main
from cti_repro.config import load_config
from cti_repro.results import is_current, read_result
from cti_repro.study import GRADED_METRICS, METRICS
from tests.smoke import seed_from_session

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_config(tmp_path_factory, smoke_study, smoke_features):
    """The repository's config with the smoke profile's outputs moved into a temp folder; its
    catalogue and feature cache are copies of the session's."""
    tmp = tmp_path_factory.mktemp("study")
    raw = yaml.safe_load((ROOT / "_config.yml").read_text())
    raw["profiles"]["smoke"].update(
        results_dir=str(tmp / "runs"), cache_dir=str(tmp / "cache"),
        data={**raw["profiles"]["smoke"]["data"], "dir": str(tmp / "data")},
    )
    path = tmp / "_config.yml"
    path.write_text(yaml.safe_dump(raw))
    seed_from_session(smoke_study, smoke_features, load_config("smoke", path))
    return path


def _run(cfg_path, setting, model, *extra):
    return main(["run", "--setting", setting, "--model", model, "--profile", "smoke", "--config", str(cfg_path), *extra])


@pytest.mark.parametrize("model", ["BM25", "MPNet", "CLIP", "CLIP-ITA"])
def test_cli_run_writes_a_complete_record(smoke_config, model, capsys):
    assert _run(smoke_config, "most_specific", model) == 0
    out = json.loads(capsys.readouterr().out)
    rec = read_result(out["result"])
    assert rec["status"] == "ok" and rec["model"] == model and rec["setting"] == "most_specific"
    assert set(rec["means"]) == set(METRICS) | set(GRADED_METRICS)
    assert rec["means"]["TreeDist@10"] >= 0 and 0 <= rec["means"]["nDCG@10"] <= 100
    if rec["means"]["P@10"] == 100.0:  # all exact: graded agrees
        assert rec["means"]["nDCG@10"] == pytest.approx(100.0)
    assert all(0.0 <= v <= 100.0 for v in rec["means"].values())
    n_q = len(rec["queries"])
    assert all(len(v) == n_q for v in rec["per_query"].values()) and len(rec["seen"]) == n_q
    for m in (*METRICS, *GRADED_METRICS):  # the mean is the mean of the per-query values
        assert rec["means"][m] == pytest.approx(np.mean(rec["per_query"][m]), abs=1e-4)
    assert set(rec["means_by_ap_norm"]) == {"hits", "min_k_R", "R"}
    assert rec["subsets"]["n_seen"] + rec["subsets"]["n_unseen"] == n_q
    assert set(rec["top10"]) == set(rec["queries"])
    assert rec["config_hash"] and rec["data_fingerprint"] and rec["git_commit"] and rec["versions"]["torch"]
    assert rec["demonstration"] is True
    if model in ("CLIP", "CLIP-ITA"):
        assert rec["encoders"]["image"]["pretrained"] is False
    if model == "CLIP-ITA":
        hist = rec["training"]["history"]
        assert len(hist) == 3 and {"train_loss", "val_loss", "lr"} <= set(hist[0])
        assert rec["model_info"]["product_input_dim"] == 64 + 384 + 384
        ea = rec["error_analysis"]
        assert ea["same_tree"] + ea["different_tree"] <= n_q


def test_second_run_is_skipped_and_force_recomputes(smoke_config, capsys):
    assert _run(smoke_config, "all", "MPNet") == 0
    first = json.loads(capsys.readouterr().out)["result"]
    mtime = Path(first).stat().st_mtime_ns
    assert _run(smoke_config, "all", "MPNet") == 0
    assert "skipped" in capsys.readouterr().err
    assert Path(first).stat().st_mtime_ns == mtime
    cfg = load_config("smoke", smoke_config)
    rec = read_result(first)
    assert is_current(first, cfg.hash(), rec["data_fingerprint"])
    assert not is_current(first, "other-hash", rec["data_fingerprint"])
    assert _run(smoke_config, "all", "MPNet", "--force") == 0
    assert Path(first).stat().st_mtime_ns != mtime


def test_trained_model_same_seed_same_numbers(smoke_config, capsys):
    assert _run(smoke_config, "most_general", "CLIP-I", "--seed", "5") == 0
    a = read_result(json.loads(capsys.readouterr().out)["result"])
    assert _run(smoke_config, "most_general", "CLIP-I", "--seed", "5", "--force") == 0
    b = read_result(json.loads(capsys.readouterr().out)["result"])
    assert a["per_query"] == b["per_query"]
    assert a["training"]["history"][-1]["val_loss"] == b["training"]["history"][-1]["val_loss"]


def test_bad_arguments(smoke_config, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--setting", "leaf", "--model", "BM25"])
    assert main(["run", "--setting", "all", "--model", "BM25", "--profile", "nope", "--config", str(smoke_config)]) == 2
    assert "no such profile" in capsys.readouterr().err


def test_error_analysis_same_vs_different_tree():
    from cti_repro.data.pairs import SettingData
    from cti_repro.run.row import error_analysis

    paths = [["A", "A1", "A1x"], ["A", "A1"], ["B", "B1"], ["A", "A1", "A1x"]]
    labels = np.array(["A1x", "A1", "B1", "A1x"], dtype=object)
    split = {"train": np.array([], int), "val": np.array([], int), "test": np.arange(4)}
    d = SettingData("most_specific", labels, split, paths)
    # queries (sorted): A1, A1x, B1; top-1 picks: A1 -> product 0 (A1x, same tree, d=+1),
    # A1x -> product 1 (A1, same tree, d=-1), B1 -> product 0 (A1x, different tree)
    out = error_analysis(np.array([0, 1, 0]), d)
    assert out == {"same_tree": 2, "different_tree": 1, "same_tree_depth_diff": {"-1": 1, "1": 1}}
