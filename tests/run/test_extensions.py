"""The extensions beyond the paper, end to end on the smoke profile (CLIP-ITA, most_specific)."""

import json
import shutil
from pathlib import Path

import pytest

from cti_repro.cli import main
from cti_repro.config import ConfigError, load_config
from cti_repro.report import beyond
from cti_repro.results import read_result
from cti_repro.run.extensions import extensions_dir, run_extensions, with_overrides
from cti_repro.study import GRADED_METRICS
from tests.smoke import seed_from_session

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def study(tmp_path_factory, smoke_study, smoke_features):
    """The repository's config copied into a temp folder (its relative outputs land there), with
    the Table 1 CLIP-ITA row and the four smoke extensions run."""
    tmp = tmp_path_factory.mktemp("beyond")
    shutil.copy(ROOT / "_config.yml", tmp / "_config.yml")
    cfg = load_config("smoke", tmp / "_config.yml")
    seed_from_session(smoke_study, smoke_features, cfg)  # the session's catalogue and features, copied
    assert main(["run", "--setting", "most_specific", "--model", "CLIP-ITA", "--profile", "smoke",
                 "--config", str(tmp / "_config.yml")]) == 0
    paths = run_extensions(cfg=cfg)
    return cfg, tmp, paths


def test_every_extension_ran_with_its_option(study):
    cfg, _, paths = study
    assert len(paths) == 5
    recs = {p.parts[-3]: read_result(p) for p in paths}
    assert {n: r["beyond_the_paper"] for n, r in recs.items()} == {
        "tree_soft": {"loss.kind": "tree_soft"}, "tree_margin": {"loss.kind": "tree_margin"},
        "same_label": {"loss.kind": "tree_soft", "loss.tree_decay": 0.0},
        "attention": {"model.attribute_pool": "attention"}, "disjoint": {"split.disjoint_categories": 0.2}}
    base = read_result(cfg.path(cfg.results_dir) / "most_specific" / "CLIP-ITA_seed0.json")
    assert base["beyond_the_paper"] == {} and base["held_out_categories"] == []
    for name, r in recs.items():
        assert r["status"] == "ok" and set(GRADED_METRICS) <= set(r["means"])
        assert r["config_hash"] != base["config_hash"]
        if name != "disjoint":  # same split: same queries, different numbers
            assert r["queries"] == base["queries"]
            assert r["per_query"]["P@10"] != base["per_query"]["P@10"] or r["means"] != base["means"]
    assert recs["attention"]["model_info"]["attribute_pool"] == "attention"
    held = recs["disjoint"]["held_out_categories"]
    assert held and set(held) <= set(recs["disjoint"]["queries"])
    unseen = {q for q, s in zip(recs["disjoint"]["queries"], recs["disjoint"]["seen"]) if not s}
    assert set(held) <= unseen
    # extension checkpoints never overwrite Table 1's
    ckpt = cfg.path(cfg.cache_dir) / "checkpoints"
    assert (ckpt / "most_specific" / "CLIP-ITA_seed0.pt").is_file()
    assert len(list((ckpt / "beyond").glob("*/most_specific/CLIP-ITA_seed0.pt"))) == 5
    # a second call finds them current
    assert [p.stat().st_mtime_ns for p in run_extensions(cfg=cfg)] == [p.stat().st_mtime_ns for p in paths]


def test_worker_processes_give_the_same_rows(study):
    """`reproduce` runs the extensions in single-threaded worker processes: the same records."""
    cfg, _, paths = study
    before = {p: read_result(p) for p in paths if p.parts[-3] in ("tree_soft", "disjoint")}
    assert run_extensions(cfg=cfg, names=["tree_soft", "disjoint"], force=True, workers=2) == list(before)
    for p, rec in before.items():
        after = read_result(p)
        assert after["config_hash"] == rec["config_hash"]
        assert (after["means"], after["per_query"]) == (rec["means"], rec["per_query"])


def test_a_failing_row_does_not_stop_the_others(study, monkeypatch):
    import cti_repro.run.row as row

    cfg, _, _ = study
    ran = []

    def run_row(setting, model, cfg, seed, out_dir, force, progress):
        ran.append(out_dir.name)
        if out_dir.name == "tree_soft":
            raise ValueError("boom")

    monkeypatch.setattr(row, "run_row", run_row)
    with pytest.raises(RuntimeError, match="1 of 2 extension rows failed:\nextension tree_soft: most_specific "
                                           "CLIP-ITA: ValueError: boom"):
        run_extensions(cfg=cfg, names=["tree_soft", "tree_margin"], force=True)
    assert ran == ["tree_soft", "tree_margin"]


def test_report_helpers_on_the_runs(study):
    cfg, _, _ = study
    from cti_repro.report import load_study

    records = load_study(cfg.path(cfg.results_dir))
    exts = beyond.load_extensions(cfg.path(cfg.results_dir))
    assert sorted(exts) == ["attention", "disjoint", "same_label", "tree_margin", "tree_soft"]
    d = beyond.extension_differences(records, exts)
    assert set(d["extension"]) == {"attention", "same_label", "tree_margin", "tree_soft"}  # disjoint: another test set
    row = d[(d.extension == "tree_soft") & (d.metric == "P@10")].iloc[0]
    assert row["diff"] == pytest.approx(row["extension value"] - row["base"])
    assert row["low"] <= row["diff"] <= row["high"]
    assert len(beyond.difference_summary(d)) == 4
    tree = beyond.tree_effects(exts)  # tree_soft against its control, on real runs
    r = tree[tree.metric == "P@10"].iloc[0]
    same = d[(d.extension == "same_label") & (d.metric == "P@10")].iloc[0]
    assert r["extension"] == "tree_soft - same_label" and r["base"] == pytest.approx(same["extension value"])
    assert r["extension value"] == pytest.approx(row["extension value"])
    g = beyond.graded_table(records)
    assert g.loc[0, "model"] == "CLIP-ITA" and 0 <= g.loc[0, "nDCG@10"] <= 100
    t3 = beyond.table3_splits(records, exts["disjoint"])
    ms = t3[t3.setting == "most_specific"]
    assert set(ms["split"]) == {"product split", "category-disjoint"}
    assert (ms[(ms.split == "category-disjoint") & (ms.subset == "unseen")]["queries"] >= 1).all()
    assert len(beyond.error_tree_table(records, exts)) == 6


def test_cli_runs_an_extension_profile(study, capsys):
    _, tmp, _ = study
    assert main(["run", "--setting", "most_specific", "--model", "CLIP-IA", "--profile", "smoke-attention",
                 "--config", str(tmp / "_config.yml")]) == 0
    path = json.loads(capsys.readouterr().out)["result"]
    assert Path(path).parent.parent == tmp / "runs" / "smoke-attention"
    rec = read_result(path)
    assert rec["beyond_the_paper"] == {"model.attribute_pool": "attention"}
    assert rec["model_info"]["attribute_pool"] == "attention"


def test_with_overrides_errors(study):
    cfg, _, _ = study
    assert with_overrides(cfg, {"loss.lambda": 0.3}).loss.lambda_ == 0.3
    with pytest.raises(ConfigError, match=r"x\.loss\.kinds: unknown field"):
        with_overrides(cfg, {"loss.kinds": "tree_soft"}, "x")
    with pytest.raises(ConfigError, match="loss.kind"):
        with_overrides(cfg, {"loss.kind": "nce"})
    with pytest.raises(ConfigError, match="seeds.x: seeds is not a section"):
        with_overrides(cfg, {"seeds.x": 1}, "overrides")
    with pytest.raises(ConfigError, match="no extension"):
        run_extensions(cfg=cfg, names=["nope"])
    assert extensions_dir(cfg).name == "extensions"


def test_beyond_notebook_executes(study):
    import nbformat

    from cti_repro.run.notebooks import execute

    cfg, tmp, _ = study
    out = execute(ROOT / "book" / "templates" / "report_beyond.ipynb", tmp / "report_beyond.ipynb",
                  {"profile": "smoke", "config_path": str(tmp / "_config.yml")}, {}, tmp, hide_parameters=True)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    html = " ".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for needle in ("tree_soft", "tree_margin", "attention", "category-disjoint", "nDCG@10", "TreeDist@10"):
        assert needle in html, needle
