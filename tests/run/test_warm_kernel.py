"""Warm kernels (``cti_repro.run.warm_kernel``): one kernel per process, reset between notebooks,
replaced after a failure, never left running, and rows bit-for-bit equal to fresh kernels."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from cti_repro.clip_weights import KEY_ENV
from cti_repro.run import warm_kernel
from cti_repro.run.notebooks import execute

# The probe prints what a notebook can see of the ones before it, then leaves traces of its own.
PROBE = [
    'mark = "fresh"',  # the parameters cell
    "import os, sys, warnings, json\n"
    "probe = {'pid': os.getpid(), 'parent': os.getppid(), 'leak': globals().get('leaked'),\n"
    "         'env': os.environ.get('CTI_TEST_LEAK'), 'figs': sys.modules['matplotlib.pyplot'].get_fignums()\n"
    "         if 'matplotlib.pyplot' in sys.modules else [],\n"
    "         'lw': sys.modules['matplotlib'].rcParams['lines.linewidth'] if 'matplotlib' in sys.modules else None,\n"
    "         'key': os.environ.get('" + KEY_ENV + "'), 'cwd': os.getcwd(), 'path': sys.path[-1],\n"
    "         'filters': len(warnings.filters), 'mark': mark, 'count': get_ipython().execution_count}\n"
    "print('PROBE ' + json.dumps(probe))",
    "leaked = 42\nos.environ['CTI_TEST_LEAK'] = '1'\nsys.path.append('/leaked')\n"
    "warnings.filterwarnings('ignore', message='leaked')\nos.chdir('/')\n"
    "import matplotlib, matplotlib.pyplot as plt\nmatplotlib.rcParams['lines.linewidth'] = 9.0\nfig = plt.figure()",
]


@pytest.fixture
def probe(tmp_path):
    nb = new_notebook(cells=[new_code_cell(PROBE[0], metadata={"tags": ["parameters"]}),
                             *(new_code_cell(c) for c in PROBE[1:])])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def _run(template: Path, tmp_path: Path, n: int, **params) -> dict:
    out = tmp_path / f"out{n}.ipynb"
    execute(template, out, params, {}, tmp_path)
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    return json.loads(text.split("PROBE ", 1)[1].splitlines()[0])


def _gone(pid: int, wait: float = 10.0) -> bool:
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_one_kernel_reset_between_notebooks(probe, tmp_path, monkeypatch):
    monkeypatch.delenv(warm_kernel.ENV, raising=False)
    with warm_kernel.warm_kernels():
        first = _run(probe, tmp_path, 1, mark="one")
        second = _run(probe, tmp_path, 2, mark="two")
        assert _kernels_of({os.getpid()}) == [first["pid"]]  # (the check below can see a kernel)
    assert second["pid"] == first["pid"]  # the same kernel ...
    for seen in (first, second):  # ... that shows the second notebook nothing of the first
        assert seen["leak"] is None and seen["env"] is None and seen["path"] != "/leaked"
        assert seen["figs"] == [] and seen["lw"] in (None, 1.5)  # no open figure, matplotlib's default width
        assert seen["cwd"] == str(tmp_path) and seen["filters"] == first["filters"]
        assert seen["count"] == 4  # IPython's count as in a new kernel (3 cells before, papermill's injected one too)
    counts = [[c.execution_count for c in nbformat.read(tmp_path / f"out{i}.ipynb", as_version=4).cells]
              for i in (1, 2)]
    assert counts[0] == counts[1] == [1, 2, 3, 4]  # the page's prompts restart too
    assert second["mark"] == "two"  # its own parameters
    assert _gone(first["pid"]) and not _kernels_of({os.getpid()})  # the scope's end shuts the kernel down


def test_failed_notebook_or_dead_kernel_gets_a_new_one(probe, tmp_path, monkeypatch):
    monkeypatch.delenv(warm_kernel.ENV, raising=False)
    bad = new_notebook(cells=[new_code_cell("leaked = 1\nraise ValueError('boom')")])
    nbformat.write(bad, tmp_path / "bad.ipynb")
    with warm_kernel.warm_kernels():
        first = _run(probe, tmp_path, 1)
        with pytest.raises(Exception, match="boom"):
            execute(tmp_path / "bad.ipynb", tmp_path / "bad_out.ipynb", {}, {}, tmp_path)
        assert _gone(first["pid"])  # a failure shuts its kernel down
        second = _run(probe, tmp_path, 2)
        assert second["pid"] != first["pid"] and second["leak"] is None
        os.kill(second["pid"], signal.SIGKILL)  # a kernel that died between notebooks is replaced
        assert _gone(second["pid"])
        third = _run(probe, tmp_path, 3)
        assert third["pid"] not in (first["pid"], second["pid"]) and third["leak"] is None
    assert _gone(third["pid"])


def test_kernel_sees_the_environment_of_its_batch(probe, tmp_path, monkeypatch):
    """The image-weights key of the batch a notebook runs in, not the one of the kernel's start."""
    monkeypatch.delenv(warm_kernel.ENV, raising=False)
    with warm_kernel.warm_kernels():
        monkeypatch.setenv(KEY_ENV, "batch-a")
        a = _run(probe, tmp_path, 1)
        monkeypatch.setenv(KEY_ENV, "batch-b")
        b = _run(probe, tmp_path, 2)
        c = _run(probe, tmp_path, 3)
    assert (a["key"], b["key"], c["key"]) == ("batch-a", "batch-b", "batch-b")
    assert a["pid"] != b["pid"] == c["pid"]


def test_switch_off_and_no_reuse_outside_a_scope(probe, tmp_path, monkeypatch):
    monkeypatch.setenv(warm_kernel.ENV, "0")
    with warm_kernel.warm_kernels():
        pids = [_run(probe, tmp_path, i)["pid"] for i in range(2)]
    monkeypatch.delenv(warm_kernel.ENV)
    pids.append(_run(probe, tmp_path, 3)["pid"])  # no scope: a new kernel, shut down after
    assert len(set(pids)) == 3 and all(_gone(p) for p in pids)


def test_interrupt_leaves_no_kernel(probe, tmp_path, monkeypatch):
    """Ctrl-C in the batch's serial path: the scope still shuts its kernel down."""
    monkeypatch.delenv(warm_kernel.ENV, raising=False)
    seen = {}
    with pytest.raises(KeyboardInterrupt), warm_kernel.warm_kernels():
        seen = _run(probe, tmp_path, 1)
        raise KeyboardInterrupt
    assert _gone(seen["pid"])
    assert warm_kernel._kernel is None


def test_pool_workers_shut_their_kernels_down(smoke_study, probe, tmp_path, monkeypatch):
    """Two pool workers, four notebooks: at most two kernels, none left when run_rows returns."""
    from cti_repro.run import batch

    monkeypatch.delenv(warm_kernel.ENV, raising=False)
    tasks = [batch.RowTask("all", f"P{i}", 0, tmp_path / f"r{i}.json", tmp_path / f"nb{i}.ipynb") for i in range(4)]

    def job(task):
        return execute, (probe, task.notebook, {"mark": task.model}, {}, tmp_path), {}

    failed = batch.run_rows(tasks, smoke_study.cfg, smoke_study.fp, smoke_study.layout, smoke_study.config_path,
                            workers=2, job=job)
    assert failed == []
    seen = []
    for t in tasks:
        text = "".join(o.get("text", "") for c in nbformat.read(t.notebook, as_version=4).cells
                       for o in c.get("outputs", []))
        seen.append(json.loads(text.split("PROBE ", 1)[1].splitlines()[0]))
    pids, workers = {s["pid"] for s in seen}, {s["parent"] for s in seen}
    assert len(pids) <= 2 and len(workers) <= 2 and all(_gone(p) for p in pids)
    assert not _kernels_of(workers)  # nor any other kernel those workers started


def _kernels_of(parents: set[int]) -> list[int]:
    """Live ipykernel processes (``pgrep -f ipykernel``) started by one of ``parents`` (their ``JPY_PARENT_PID``)."""
    import subprocess

    found = subprocess.run(["pgrep", "-f", "ipykernel"], capture_output=True, text=True).stdout.split()
    alive = []
    for pid in map(int, found):
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and int(proc.environ().get("JPY_PARENT_PID", 0)) in parents:
                alive.append(pid)
        except (psutil.Error, ValueError):
            continue
    return alive


# ---- rows: bit-for-bit the same in fresh kernels and in one warm kernel ----------------------------------
COMPARED = ("means", "means_by_ap_norm", "per_query", "queries", "seen", "subsets", "top10", "error_analysis")


def _row(study, setting: str, model: str, out: Path) -> dict:
    from cti_repro.results import read_result, result_path

    params = {"setting": setting, "model": model, "profile": "smoke", "seed": 0, "results_dir": str(out),
              "config_path": str(study.config_path), "force": True, "overrides": []}
    template = study.layout.templates / "row.ipynb"
    execute(template, out / "nb" / f"{setting}_{model}.ipynb", params, {}, Path(study.cfg.root).resolve(),
            drop_tag=None if model.startswith("CLIP-") else "trained-only")
    rec = read_result(result_path(out, setting, model, 0))
    return {**{k: rec.get(k) for k in COMPARED}, "training": _untimed(rec.get("training"))}


def _untimed(value):
    """``value`` without its clock readings (``seconds`` per epoch, ``*time*``): all else must be equal."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if "time" not in k and "second" not in k}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_rows_equal_in_fresh_and_warm_kernels(smoke_study, smoke_features, tmp_path, monkeypatch):
    rows = [("most_specific", "CLIP-I"), ("all", "BM25")]
    monkeypatch.setenv(warm_kernel.ENV, "0")
    fresh = {r: _row(smoke_study, *r, tmp_path / "fresh") for r in rows}
    monkeypatch.delenv(warm_kernel.ENV)
    with warm_kernel.warm_kernels():
        warm = {rows[0]: _row(smoke_study, *rows[0], tmp_path / "warm")}
        _row(smoke_study, "most_general", "CLIP-ITA", tmp_path / "between")  # another row in between
        warm[rows[1]] = _row(smoke_study, *rows[1], tmp_path / "warm")
        again = _row(smoke_study, *rows[0], tmp_path / "again")  # and the trained row once more, warm
    for r in rows:
        assert json.dumps(warm[r], sort_keys=True) == json.dumps(fresh[r], sort_keys=True), r
    assert json.dumps(again, sort_keys=True) == json.dumps(fresh[rows[0]], sort_keys=True)
    assert fresh[rows[0]]["training"] and fresh[rows[0]]["per_query"]
