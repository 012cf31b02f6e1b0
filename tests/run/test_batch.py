"""The batch runner, the notebooks and the book (``cti_repro.run.batch``).

Unit tests (fast): the row plan and its resume rule, failure isolation in :func:`run_rows`.
End to end (``slow``, ~3 min on 2 cores, part of ``make test``): on the smoke profile with every
output folder in a temporary directory, all 18 rows in-process, one row notebook and one failing
row notebook with papermill, the data and report notebooks, then ``jupyter-book build -W -n``
and the Table 1 page checked for every row with published and reproduced values.
"""

from __future__ import annotations

import os
import re
from html import unescape
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from cti_repro.run import batch, book
from cti_repro.run import notebooks as nbrun
from cti_repro.config import load_config
from cti_repro.report import paper
from cti_repro.results import read_result, result_path, write_result
from cti_repro.study import MODELS, SETTINGS

from tests.smoke import smoke_config


# ---- unit: plan, resume, failure isolation ---------------------------------------------------
@pytest.fixture()
def small(tmp_path):
    cfg = load_config("smoke", smoke_config(tmp_path))
    return SimpleNamespace(cfg=cfg, layout=book.book_layout(cfg), fp="fp0", base=tmp_path)


def _ok_record(cfg, task, fp):
    write_result(task.result, {"status": "ok", "setting": task.setting, "model": task.model, "seed": task.seed,
                               "config_hash": cfg.hash(), "data_fingerprint": fp, "means": {}})


def _stamped_notebook(path: Path, stamp: dict) -> None:
    nb = nbformat.v4.new_notebook(metadata={"cti_repro": stamp})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def test_plan_order_and_paths(small):
    tasks = batch.plan_rows(small.cfg, small.fp, small.layout, seeds=[0, 1])
    # baselines are deterministic: once (first seed); trained models once per seed
    assert len(tasks) == 3 * 3 + 3 * 3 * 2 and not any(t.skip for t in tasks)
    assert {t.model for t in tasks[:9]} == {"BM25", "MPNet", "CLIP"}  # baselines first
    assert {t.seed for t in tasks[:9]} == {0} and {t.seed for t in tasks[9:]} == {0, 1}
    assert [(t.setting, t.model, t.seed) for t in tasks[:4]] == [
        ("all", "BM25", 0), ("most_general", "BM25", 0), ("most_specific", "BM25", 0), ("all", "CLIP", 0)]
    t = tasks[0]
    assert t.result == result_path(small.cfg.path(small.cfg.results_dir).resolve(), "all", "BM25", 0)
    assert t.notebook == small.base / "book" / "runs" / "smoke" / "rows" / "all" / "BM25_seed0.ipynb"


def test_rows_are_submitted_longest_first(small):
    # a long most-general row submitted last would run alone at the end (~20 s idle core per batch)
    tasks = batch.plan_rows(small.cfg, small.fp, small.layout, seeds=[0, 1])
    order = batch.submission_order(tasks)
    assert sorted(order, key=id) == sorted(tasks, key=id)  # a permutation
    trained_mg = [t for t in tasks if t.model not in ("BM25", "MPNet", "CLIP") and t.setting == "most_general"]
    assert order[: len(trained_mg)] == trained_mg  # stable within a class
    assert {t.model for t in order[-9:]} == {"BM25", "MPNet", "CLIP"}  # baselines (seconds each) last
    ran = []
    batch.run_rows(tasks[:2] + trained_mg[:1], small.cfg, small.fp, small.layout, small.base / "_config.yml",
                   executor=ran.append)
    assert ran == [trained_mg[0], *tasks[:2]]


def test_resume_skips_only_current_rows(small):
    cfg, layout, fp = small.cfg, small.layout, small.fp
    first = batch.plan_rows(cfg, fp, layout)
    done, no_nb, stale_nb, failed = first[0], first[1], first[2], first[3]
    stamp = nbrun.stamp(cfg, fp, layout.templates / "row.ipynb")
    for t in (done, no_nb, stale_nb):
        _ok_record(cfg, t, fp)
    _stamped_notebook(done.notebook, stamp)
    _stamped_notebook(stale_nb.notebook, {**stamp, "config_hash": "old"})
    _stamped_notebook(failed.notebook, stamp)
    write_result(failed.result, {"status": "failed", "config_hash": cfg.hash(), "data_fingerprint": fp})

    skip = {(t.setting, t.model): t.skip for t in batch.plan_rows(cfg, fp, layout)}
    assert skip[(done.setting, done.model)] is True
    assert sum(skip.values()) == 1  # result without notebook, stale notebook, failed record: rerun
    assert not any(t.skip for t in batch.plan_rows(cfg, fp, layout, force=True))
    assert not any(t.skip for t in batch.plan_rows(cfg, "other-data", layout))
    _stamped_notebook(done.notebook, {**stamp, "template": "edited"})  # a changed template re-executes
    assert not any(t.skip for t in batch.plan_rows(cfg, fp, layout))


def test_failure_is_recorded_and_others_run(small, capsys):
    cfg, fp = small.cfg, small.fp
    tasks = batch.plan_rows(cfg, fp, small.layout)[:4]
    _ok_record(cfg, tasks[2], fp)  # a successful record that a later failure must not replace
    ran = []

    def executor(task):
        if task in (tasks[1], tasks[2]):
            raise RuntimeError(f"boom {task.model}")
        ran.append(task)

    failed = batch.run_rows(tasks, cfg, fp, small.layout, small.base / "_config.yml", executor=executor)
    assert failed == [tasks[1], tasks[2]] and ran == [tasks[0], tasks[3]]
    rec = read_result(tasks[1].result)
    assert rec["status"] == "failed" and "boom" in rec["error"] and rec["config_hash"] == cfg.hash()
    assert {rec["setting"], rec["model"], rec["seed"]} == {tasks[1].setting, tasks[1].model, tasks[1].seed}
    assert rec["notebook"].endswith(".ipynb")
    assert read_result(tasks[2].result)["status"] == "ok"
    out = capsys.readouterr().out
    assert re.search(r"^\[1/4\] all BM25 seed 0: ok in [\d.]+ s \(elapsed \d+m\d\ds, ~\d+m\d\ds left\)$", out, re.M)
    assert re.search(r"^\[2/4\] most_general BM25 seed 0: FAILED \(RuntimeError: boom BM25\); notebook: ", out, re.M)


def test_publish_fills_the_committed_structure(small):
    layout = small.layout
    book.stage_book(layout)
    stamp = nbrun.stamp(small.cfg, small.fp, layout.templates / "row.ipynb")
    _stamped_notebook(layout.data_notebook, stamp)
    _stamped_notebook(layout.row_notebook("all", "CLIP-I", 0), stamp)
    _stamped_notebook(layout.row_notebook("all", "BM25", 0).with_suffix(".failed.ipynb"), stamp)
    _stamped_notebook(layout.row_notebook("all", "BM25", 2).with_name(".BM25_seed2.partial.ipynb"), stamp)
    assert book.publish(layout, small.cfg) is True and book.publish(layout, small.cfg) is False  # same pages
    gen = layout.root / "runs" / "_book"
    assert sorted(p.relative_to(gen).as_posix() for p in gen.rglob("*.ipynb")) == [
        "data.ipynb", "rows/all/1_BM25_FAILED.ipynb", "rows/all/4_CLIP-I_seed0.ipynb"]
    toc = yaml.safe_load((layout.root / "_toc.yml").read_text())  # the committed one, unchanged
    assert toc == yaml.safe_load((book.SOURCE_BOOK / "_toc.yml").read_text())
    rows = (gen / "fragments" / "rows_all.md").read_text()
    assert "[ok](runs/_book/rows/all/4_CLIP-I_seed0.ipynb)" in rows and "[FAILED](runs/_book/rows/all/1_BM25_FAILED" in rows
    # the missing rows name the command that produces them; baselines have no seed
    assert "- CLIP-IA, seed 0: `cti-repro reproduce --profile smoke --seeds 0`" in rows
    assert "- MPNet: `cti-repro reproduce --profile smoke --seeds 0`" in rows
    pages = (gen / "fragments" / "pages.md").read_text()
    assert "Table 1: published vs reproduced: **missing** (`cti-repro report --profile smoke`)" in pages


# ---- end to end on the smoke profile --------------------------------------------------------
# the study, its rows, notebooks and book are built once per session (tests/conftest.py, tests/smoke.py)
@pytest.fixture(scope="module")
def study(smoke_study):
    return smoke_study


@pytest.fixture(scope="module")
def rows(smoke_rows):
    return smoke_rows


@pytest.fixture(scope="module")
def notebooks(smoke_notebooks):
    return smoke_notebooks


@pytest.mark.slow
def test_all_rows_in_process(study, rows):
    assert len(rows) == 18
    for t in rows:
        rec = read_result(t.result)
        assert rec["status"] == "ok" and set(rec["means"]) >= {"P@1", "MAP@10", "R-precision"}, t.label
    assert all(t.skip is False for t in rows)
    # the committed expected numbers of the smoke profile (`cti-repro verify --profile smoke`)
    from cti_repro.report import verify

    check = verify.verify_results(study.cfg.path(study.cfg.results_dir), verify.expected_path("smoke"))
    assert len(check) == 18 * 6 and (check.status == "OK").all(), check[check.status != "OK"].to_string()


@pytest.mark.slow
def test_row_notebook_executes(study, notebooks):
    assert notebooks.failed == [notebooks.bad]
    nb = nbformat.read(notebooks.good.notebook, as_version=4)
    assert nb.cells[0].source.startswith("# CLIP-I, most specific category, seed 0")
    assert nb.metadata["cti_repro"]["config_hash"] == study.cfg.hash()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the training curve
    assert any("Demonstration, not a reproduction" in o.get("data", {}).get("text/html", "") for o in outputs)
    assert any("paper (Table 1)" in o.get("data", {}).get("text/html", "") for o in outputs)
    # the baseline page has no training section
    base = nbformat.read(notebooks.baseline.notebook, as_version=4)
    assert not any("## Training" in c.source for c in base.cells)
    # resume: the executed rows are now skipped, the others are not
    skipped = {t.label for t in batch.plan_rows(study.cfg, study.fp, study.layout) if t.skip}
    assert skipped == {notebooks.good.label, notebooks.baseline.label}
    assert not list(study.layout.runs.glob("rows/*/.*.partial.ipynb"))


@pytest.mark.slow
def test_failing_row_notebook_is_recorded(study, notebooks):
    bad = notebooks.bad
    failed_nb = bad.notebook.with_suffix(".failed.ipynb")
    assert failed_nb.is_file() and not bad.notebook.exists()
    nb = nbformat.read(failed_nb, as_version=4)
    assert any(c.source.startswith("# FAILED: NoSuchModel") for c in nb.cells if c.cell_type == "markdown")
    rec = read_result(bad.result)
    assert rec["status"] == "failed" and "unknown model" in rec["error"]
    assert rec["notebook"] == str(failed_nb) and rec["config_hash"] == study.cfg.hash()


@pytest.mark.slow
def test_pages_and_book_build(study, smoke_book):
    layout = study.layout
    assert smoke_book.problems == [] and smoke_book.code == 0
    for nb_path in [layout.data_notebook] + [layout.report_notebook(r) for r in book.REPORTS]:
        nb = nbformat.read(nb_path, as_version=4)
        assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                    if o.output_type == "error"], nb_path
    html = layout.root / "_build" / "html"
    assert (html / "index.html").is_file()
    static = [p.stem for p in layout.source.glob("*.md")]
    assert {"intro", "deviations", "real_data"} <= set(static)
    for page in ["runs/_book/data", "runs/_book/rows/most_specific/4_CLIP-I_seed0",
                 "runs/_book/rows/all/5_CLIP-IA_seed0_FAILED", "runs/_book/rows/all/1_BM25", "results", *static]:
        assert (html / f"{page}.html").is_file(), page

    text = unescape(re.sub(r"<[^>]+>", " ", (html / "runs/_book/report/1_report_table1.html").read_text()))
    pub = paper.table1().set_index(["setting", "model"])
    assert f"{pub.loc[('most_general', 'CLIP-ITA'), 'P@1']:.2f}" == "35.71" and "35.71" in text
    for title in ("All categories", "Most general category", "Most specific category", *MODELS):
        assert title in text, title
    for setting in SETTINGS:
        for model in MODELS:
            rec = read_result(result_path(study.cfg.path(study.cfg.results_dir), setting, model, 0))
            for metric in ("P@1", "R-precision"):
                assert f"{pub.loc[(setting, model), metric]:.2f}" in text, (setting, model, metric)
                assert f"{rec['means'][metric]:.2f}" in text, (setting, model, metric)


def test_ctrl_c_cancels_the_queued_rows_and_says_how_to_resume(small, monkeypatch, capsys):
    """Ctrl-C while the pool runs: the queued rows are dropped at once (not run by the pool's exit),
    one line says what finished and how to resume, and the interrupt propagates."""
    import concurrent.futures as cf

    calls = {}

    class FakePool:
        def __init__(self, *args, **kwargs):
            calls["init"] = kwargs

        def submit(self, fn, *args, **kwargs):
            calls.setdefault("submitted", 0)
            calls["submitted"] += 1
            return cf.Future()

        def shutdown(self, wait=True, cancel_futures=False):
            calls["shutdown"] = (wait, cancel_futures)

    def interrupted(futures):
        raise KeyboardInterrupt

    monkeypatch.setattr(cf, "ProcessPoolExecutor", FakePool)
    monkeypatch.setattr(cf, "as_completed", interrupted)
    tasks = batch.plan_rows(small.cfg, small.fp, small.layout)[:5]
    with pytest.raises(KeyboardInterrupt):
        batch.run_rows(tasks, small.cfg, small.fp, small.layout, small.base / "_config.yml", workers=2)
    assert calls["submitted"] == 5 and calls["shutdown"] == (False, True)  # no wait, queued rows cancelled
    assert calls["init"]["initializer"] is batch.init_worker
    seen = []  # workers notice a dead parent, and keep one warm kernel each
    monkeypatch.setattr(batch, "watch_parent", lambda parent: seen.append(("watch", parent)))
    monkeypatch.setattr(batch, "keep_for_process", lambda: seen.append("warm"))
    batch.init_worker(*calls["init"]["initargs"])
    assert seen == [("watch", os.getpid()), "warm"]
    out = capsys.readouterr().out
    assert "interrupted: 0 of 5 rows finished" in out and "rerun the same command to resume" in out
