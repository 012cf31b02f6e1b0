"""Rows on a real local Ray cluster (``cti_repro.run.ray_executor``); skipped without ``ray``.

One module-scoped cluster (``ray.init(num_cpus=2)``): the smoke rows through the batch's
``engine="ray"`` path give the same metric values, to the bit, as in this process; a worker that
dies mid-row is retried and the batch completes; a row that keeps raising is recorded as failed
after ``retries`` further attempts while the others finish.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from cti_repro.config import load_config  # noqa: E402
from cti_repro.features import PARTS  # noqa: E402
from cti_repro.results import read_result, write_result  # noqa: E402
from cti_repro.run import batch, book  # noqa: E402
from cti_repro.run.ray_executor import run_tasks  # noqa: E402
from tests.run.test_batch import smoke_config  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    # The workers inherit PYTHONPATH from the cluster started here, so they import this checkout
    # (and this test module, whose functions are sent by reference)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), saved]))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        os.environ.pop("PYTHONPATH") if saved is None else os.environ.__setitem__("PYTHONPATH", saved)
    yield ray
    ray.shutdown()


@pytest.fixture()
def small(tmp_path):
    cfg = load_config("smoke", smoke_config(tmp_path))
    return SimpleNamespace(cfg=cfg, layout=book.book_layout(cfg), fp="fp0", base=tmp_path)


def _ok(task, cfg, fp) -> str:
    write_result(task.result, {"status": "ok", "setting": task.setting, "model": task.model, "seed": task.seed,
                               "config_hash": cfg.hash(), "data_fingerprint": fp, "means": {"P@1": 1.0}})
    return task.label


def _attempts(task) -> int:
    """Attempts of ``task`` so far, counted in a file next to its result (visible across workers)."""
    marker = task.result.with_suffix(".attempts")
    marker.parent.mkdir(parents=True, exist_ok=True)
    with open(marker, "a") as fh:
        fh.write("x")
    return marker.stat().st_size


def test_dead_worker_is_retried_and_failures_recorded(cluster, small):
    cfg, fp = small.cfg, small.fp
    tasks = batch.plan_rows(cfg, fp, small.layout)[:4]
    dies, raises = tasks[1], tasks[2]

    def executor(task):
        n = _attempts(task)
        if task == dies and n == 1:
            os._exit(3)  # the worker process dies mid-row, as on a lost node
        if task == raises:
            raise RuntimeError(f"boom {task.model} attempt {n}")
        return _ok(task, cfg, fp)

    failed = batch.run_rows(tasks, cfg, fp, small.layout, small.base / "_config.yml", executor=executor,
                            engine="ray", retries=1)
    assert failed == [raises]
    for t in tasks:
        rec = read_result(t.result)
        assert rec["status"] == ("failed" if t == raises else "ok"), t.label
    assert dies.result.with_suffix(".attempts").read_text() == "xx"  # died once, then succeeded
    assert raises.result.with_suffix(".attempts").read_text() == "xx"  # 1 + retries attempts
    rec = read_result(raises.result)
    assert "RuntimeError: boom" in rec["error"] and "attempt 2" in rec["error"]
    assert rec["config_hash"] == cfg.hash() and rec["data_fingerprint"] == fp


def test_no_retries_a_dead_worker_fails_only_its_row(cluster, small):
    tasks = batch.plan_rows(small.cfg, small.fp, small.layout)[:3]
    seen: dict = {}

    def job(task):
        if task == tasks[0]:
            os._exit(1)
        return _ok(task, small.cfg, small.fp)

    errors = {}
    run_tasks([(t, job, (t,), {}) for t in tasks], lambda k, e, s: errors.__setitem__(k, e), {"num_cpus": 1},
              retries=0, results=seen)
    assert errors[tasks[0]] is not None and "WorkerCrashedError" in errors[tasks[0]], errors[tasks[0]]
    assert errors[tasks[1]] is None and errors[tasks[2]] is None
    assert seen == {tasks[1]: tasks[1].label, tasks[2]: tasks[2].label}


def test_reachable_address_accepts_a_real_gcs(cluster):
    """The --address check (issue 18 item 8) lets a real Ray GCS through, as the address Ray uses."""
    from cti_repro.run.ray_executor import reachable_address

    gcs = cluster.get_runtime_context().gcs_address
    assert reachable_address(gcs, timeout=5) == gcs


def test_task_resources(small):
    import dataclasses

    from cti_repro.run.ray_executor import task_resources

    def fake(gpus):
        return SimpleNamespace(cluster_resources=lambda: {"CPU": 8.0, **({"GPU": gpus} if gpus else {})})

    def on(device):
        return dataclasses.replace(small.cfg, train=dataclasses.replace(small.cfg.train, device=device))

    assert task_resources(on("auto"), fake(0)) == {"num_cpus": 1}
    assert task_resources(on("auto"), fake(2.0)) == {"num_cpus": 1, "num_gpus": 1}
    assert task_resources(on("cuda"), fake(1.0)) == {"num_cpus": 1, "num_gpus": 1}
    assert task_resources(on("cpu"), fake(4.0)) == {"num_cpus": 1}
    assert task_resources(on("auto"), fake(2.0), gpu_work=False) == {"num_cpus": 1}
    with pytest.raises(ValueError, match="no GPU"):
        task_resources(on("cuda"), fake(0))


def test_unknown_executor_is_an_error(small):
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        batch.run_rows(batch.plan_rows(small.cfg, small.fp, small.layout)[:1], small.cfg, small.fp, small.layout,
                       small.base / "_config.yml", engine="dask")


# ---- the real rows: Ray == this process, to the bit ------------------------------------------
@pytest.fixture(scope="module")
def smoke(tmp_path_factory, smoke_study, smoke_features):
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.features import load_features
    from tests.smoke import seed_from_session

    base = tmp_path_factory.mktemp("ray_study")
    cfg = load_config("smoke", smoke_config(base))
    seed_from_session(smoke_study, smoke_features, cfg)  # the session's catalogue and features, copied
    catalogue = prepare_catalogue(cfg)
    assert sorted(load_features(cfg, catalogue).cache_hits) == sorted(PARTS)  # the rows read this cache
    return SimpleNamespace(base=base, cfg=cfg, fp=catalogue.fingerprint(), layout=book.book_layout(cfg))


def _run_row_into(folder: Path, cfg):
    """A row executor that runs :func:`run_row` (what the row notebook calls) into ``folder``."""

    def executor(task):
        import torch

        from cti_repro.run.row import run_row

        torch.set_num_threads(1)  # as in the batch's kernels (KERNEL_ENV) and Ray's workers
        return str(run_row(task.setting, task.model, seed=task.seed, cfg=cfg, out_dir=folder,
                           progress=False))
    return executor


def _untimed(obj):
    """``obj`` without its wall-clock fields (``seconds``), at any depth."""
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k != "seconds"}
    return [_untimed(v) for v in obj] if isinstance(obj, list) else obj


def test_smoke_rows_on_ray_equal_local(cluster, smoke, smoke_rows):
    """Ray's rows against the session's in-process rows (``smoke_rows``: same catalogue, features,
    seed and one thread), not a second local run of the same four rows."""
    from cti_repro.results import result_path

    wanted = {("all", "BM25"), ("most_specific", "CLIP"), ("most_general", "CLIP-I"), ("all", "CLIP-ITA")}
    tasks = [t for t in batch.plan_rows(smoke.cfg, smoke.fp, smoke.layout) if (t.setting, t.model) in wanted]
    assert len(tasks) == len(wanted)
    local = {(t.setting, t.model, t.seed): t.result for t in smoke_rows}
    remote, cfg_path = smoke.base / "ray", smoke.base / "_config.yml"
    assert batch.run_rows(tasks, smoke.cfg, smoke.fp, smoke.layout, cfg_path, executor=_run_row_into(remote, smoke.cfg),
                          engine="ray") == []
    for t in tasks:
        a = read_result(local[t.setting, t.model, t.seed])
        b = read_result(result_path(remote, t.setting, t.model, t.seed))
        assert a["status"] == b["status"] == "ok", t.label
        # JSON floats are repr-exact: equal values are equal bits; training losses included
        for key in ("means", "means_by_ap_norm", "subsets", "per_query", "top10", "training"):
            assert _untimed(a[key]) == _untimed(b[key]), (t.label, key)
        assert len(a["per_query"]["P@1"]) == a["data"]["test_queries"] > 0
        assert (a["training"] is not None) == (t.model.startswith("CLIP-")), t.label


@pytest.mark.slow
def test_row_notebooks_on_ray(cluster, smoke):
    """The real path: papermill row notebooks in Ray workers, stamped, results as in this process."""
    import nbformat

    from cti_repro.results import result_path
    from cti_repro.run.row import run_row

    tasks = [t for t in batch.plan_rows(smoke.cfg, smoke.fp, smoke.layout)
             if (t.setting, t.model) in {("all", "BM25"), ("most_specific", "MPNet")}]
    assert batch.run_rows(tasks, smoke.cfg, smoke.fp, smoke.layout, smoke.base / "_config.yml", engine="ray") == []
    for t in tasks:
        nb = nbformat.read(t.notebook, as_version=4)
        assert nb.metadata["cti_repro"]["config_hash"] == smoke.cfg.hash()
        here = read_result(run_row(t.setting, t.model, seed=t.seed, cfg=smoke.cfg, out_dir=smoke.base / "here",
                                   progress=False))
        assert read_result(t.result)["means"] == here["means"], t.label
        assert t.result == result_path(smoke.cfg.path(smoke.cfg.results_dir).resolve(), t.setting, t.model, t.seed)
    # resume: exactly these rows are now current on disk
    assert {t.label for t in batch.plan_rows(smoke.cfg, smoke.fp, smoke.layout) if t.skip} == {t.label for t in tasks}


def test_image_shards_on_ray_equal_unsharded(cluster, tmp_path):
    """Two image shards as Ray tasks, assembled: the unsharded cache file, byte for byte."""
    import dataclasses

    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.features import feature_cache_dir, load_features
    from cti_repro.run import shards as sh
    from tests.run.test_shards import small_image_config

    cfg = load_config("smoke", small_image_config(tmp_path))
    catalogue = prepare_catalogue(cfg)
    plain = load_features(cfg, catalogue, parts=("image",), device="cpu")
    sharded = dataclasses.replace(cfg, cache_dir=str(tmp_path / "sharded"))
    assert sh.image_shards(sharded, catalogue, 2, executor="ray") == [0, 1]
    final = sh.assemble_image(sharded, catalogue, 2)
    assert final.read_bytes() == (feature_cache_dir(cfg) / final.name).read_bytes()
    assert np.array_equal(load_features(sharded, catalogue, parts=("image",))["image"], plain["image"])


def test_ablation_rows_on_ray_equal_local(cluster, smoke, monkeypatch):
    # `reproduce --executor ray --ablations`: the sensitivity rows are Ray tasks too
    import yaml

    from cti_repro.results import result_path
    from cti_repro.run import ray_executor
    from cti_repro.run.ablations import ablation_dir, run_ablations

    sent = []
    real = ray_executor.run_tasks
    monkeypatch.setattr(ray_executor, "run_tasks", lambda jobs, *a, **k: sent.append(len(jobs)) or real(jobs, *a, **k))

    raw = yaml.safe_load((smoke.base / "_config.yml").read_text())
    raw["ablations"] = {"models": ["CLIP-I"], "run": ["tau_0.1"],
                        "variants": {"tau_0.1": {"loss.tau": 0.1},
                                     "broken": {"eval.candidates": "all"}}}  # a trained model over all: refused
    out = {}
    for engine in ("local", "ray"):
        raw["profiles"]["smoke"]["results_dir"] = str(smoke.base / f"abl_{engine}")
        path = smoke.base / f"abl_{engine}.yml"
        path.write_text(yaml.safe_dump(raw))
        failed = run_ablations("smoke", ["tau_0.1", "broken"], path, [0], workers=2, engine=engine, retries=0)
        assert len(failed) == 3 and all(f.startswith("broken: ") for f in failed), failed  # recorded, others ran
        out[engine] = smoke.base / f"abl_{engine}"
        assert sent == ([] if engine == "local" else [6])  # the 6 rows went to Ray, not to local workers
    for setting in ("all", "most_general", "most_specific"):
        a, b = (read_result(result_path(ablation_dir(out[e], "tau_0.1"), setting, "CLIP-I", 0)) for e in out)
        assert a["status"] == b["status"] == "ok"
        assert a["means"] == b["means"] and _untimed(a["training"]) == _untimed(b["training"]), setting
