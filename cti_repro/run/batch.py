"""The batch runner: every row of Table 1 through its notebook, then the report and the book.

:func:`reproduce` is ``cti-repro reproduce``; :func:`build_report` is ``cti-repro report``.
Where the notebooks go is :mod:`cti_repro.run.book`; how one is executed,
:mod:`cti_repro.run.notebooks`.

A row is skipped when its result JSON is current (same config hash and data fingerprint) and its
executed notebook exists with the same stamp, so a killed batch resumes where it stopped.
A row that raises gets a ``status: "failed"`` record (unless a successful one exists) and the
batch goes on.

Example:
    >>> from cti_repro.run.batch import reproduce
    >>> ok = reproduce("smoke")          # rows, report, book/_build/html/index.html
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from cti_repro.config import DEFAULT_CONFIG, StudyConfig, load_config
from cti_repro.results import is_current, read_result, result_path, write_result
from cti_repro.clip_weights import exported_key
from cti_repro.run.book import BookLayout, book_layout
from cti_repro.run.notebooks import error_text, execute, failed_path, notebook_is_current, stamp
from cti_repro.run.pages import build_pages, execute_pages, write_data_files
from cti_repro.run.processes import active_pool, shared_pool, timed, worker_pool
from cti_repro.run.warm_kernel import keep_for_process, warm_kernels
from cti_repro.run.stages import finish, fmt_duration, stages_for, submission_order
from cti_repro.study import SETTING_LABELS, TRAINED, table1_rows

@dataclass(frozen=True)
class RowTask:
    """One (setting, model, seed) of the batch; ``skip`` is true when it is already done."""

    setting: str
    model: str
    seed: int
    result: Path
    notebook: Path
    skip: bool = False

    @property
    def label(self) -> str:
        return f"{self.setting} {self.model} seed {self.seed}"


def plan_rows(
    cfg: StudyConfig, fingerprint: str, layout: BookLayout, seeds: list[int] | None = None, force: bool = False,
) -> list[RowTask]:
    """Every row of Table 1 for ``seeds`` in execution order (baselines first), ``skip`` if done.

    Baselines are deterministic and run for the first seed only.

    Done: the result JSON is current and the executed notebook exists with the same stamp
    (config hash, data fingerprint, row template). With ``force`` nothing is done.
    """
    results_dir = cfg.path(cfg.results_dir).resolve()
    config_hash, tasks, expected = cfg.hash(), [], stamp(cfg, fingerprint, layout.templates / "row.ipynb")
    for setting, model, seed in table1_rows(cfg.seeds if seeds is None else seeds):
        res, nb = result_path(results_dir, setting, model, seed), layout.row_notebook(setting, model, seed)
        done = not force and is_current(res, config_hash, fingerprint) and notebook_is_current(nb, expected)
        tasks.append(RowTask(setting, model, seed, res, nb, done))
    return tasks


def record_failure(task: RowTask, error: str, cfg: StudyConfig, fingerprint: str, notebook: Path) -> bool:
    """Write a ``failed`` record for ``task`` unless a successful record is there; True if written."""
    old = read_result(task.result)
    if old is not None and old.get("status", "ok") == "ok":
        return False
    write_result(task.result, {
        "status": "failed", "setting": task.setting, "model": task.model, "seed": task.seed,
        "profile": cfg.profile, "error": error[:4000], "notebook": str(notebook),
        "config_hash": cfg.hash(), "data_fingerprint": fingerprint, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return True


def default_workers() -> int:
    """Row notebooks run at once: ``$CTI_REPRO_WORKERS``, else one per core up to 4 (kernels are
    single-threaded, see :data:`KERNEL_ENV`; rows are independent, so results do not depend on it)."""
    return max(1, int(os.environ.get("CTI_REPRO_WORKERS") or min(4, os.cpu_count() or 1)))


def run_rows(
    tasks: list[RowTask], cfg: StudyConfig, fingerprint: str, layout: BookLayout, config_path: Path,
    force: bool = False, executor: Callable[[RowTask], Any] | None = None, workers: int = 1,
    overrides: list[str] | None = None, engine: str = "local", address: str | None = None, retries: int | None = None,
    job: Callable[[RowTask], tuple[Callable[..., Any], tuple, dict]] | None = None,
) -> list[RowTask]:
    """Execute the row notebook of every task not marked ``skip``; return the tasks that failed.

    Prints one line per row as it finishes: ``[7/54] most_general CLIP-I seed 1: ok in 12.3 s
    (elapsed 3m10s, ~6m20s left)``; the estimate is the mean time so far of each remaining row's
    (setting, model), else of its model, else of all rows, over ``workers`` worker processes. A
    row that raises is recorded (:func:`record_failure`) and the others go on. ``executor(task)``
    replaces the notebook execution (tests; then in this process).

    ``engine="ray"`` runs each row as a Ray task instead (:mod:`cti_repro.run.ray_executor`;
    ``address`` joins a cluster, none starts a local one with ``workers`` CPUs; a row is retried
    ``retries`` times before it counts as failed); ``executor`` then runs in the Ray workers.
    ``job(task) -> (fn, args, kwargs)`` replaces the Table 1 row notebook with another picklable
    call (the text-image study's rows), run like one: in worker processes, or on Ray.
    """
    template, cwd = layout.templates / "row.ipynb", Path(cfg.root).resolve()
    meta = stamp(cfg, fingerprint, template)

    def row_job(task: RowTask) -> tuple[Callable[..., Any], tuple, dict]:
        params = {"setting": task.setting, "model": task.model, "profile": cfg.profile, "seed": task.seed,
                  "results_dir": str(task.result.parent.parent), "config_path": str(config_path), "force": force,
                  "overrides": list(overrides or [])}
        return execute, (template, task.notebook, params, meta, cwd), {
            # baselines have no seed (they run once): their title names none
            "title": f"{task.model}, {SETTING_LABELS.get(task.setting, task.setting).lower()}"
                     + (f", seed {task.seed}" if task.model in TRAINED else ""),
            "drop_tag": None if task.model in TRAINED else "trained-only", "hide_parameters": True,
            "log": layout.runs / "logs" / f"{task.setting}_{task.model}_seed{task.seed}.log"}

    job = job or row_job

    for i, task in enumerate(tasks, 1):
        if task.skip:
            print(f"[{i}/{len(tasks)}] {task.label}: current, skipped", flush=True)
    todo = submission_order([t for t in tasks if not t.skip])
    pending, failed, times, t_start = list(todo), [], {}, time.perf_counter()

    def guess(t: RowTask) -> float:  # mean of the same (setting, model), else model, else all rows
        same = times.get((t.setting, t.model)) or [x for (_, m), v in times.items() if m == t.model for x in v]
        return fmean(same or [x for v in times.values() for x in v])

    def finished(task: RowTask, error: str | None, seconds: float) -> None:
        pending.remove(task)
        times.setdefault((task.setting, task.model), []).append(seconds)
        status = "ok"
        if error is not None:
            failed.append(task)
            nb = failed_path(task.notebook)
            status = f"FAILED ({error.splitlines()[0][:160] if error else '?'}); notebook: {nb}"
            try:
                record_failure(task, error, cfg, fingerprint, nb if nb.is_file() else task.notebook)
            except OSError as err:  # e.g. the results folder itself is the problem
                status += f"; no failure record ({err})"
        left = sum(guess(t) for t in pending) / max(1, min(workers, len(pending)))
        print(f"[{len(tasks) - len(pending)}/{len(tasks)}] {task.label}: {status} in {seconds:.1f} s "
              f"(elapsed {fmt_duration(time.perf_counter() - t_start)}, ~{fmt_duration(left)} left)", flush=True)

    if engine != "local":
        from cti_repro.run import ray_executor

        if engine != "ray":
            raise ValueError(f"unknown executor {engine!r}; expected one of {ray_executor.EXECUTORS}")
        jobs = [(t, *((executor, (t,), {}) if executor else job(t))) for t in todo]
        ray_executor.run_rows_on_ray(jobs, finished, cfg, address, workers,
                                     ray_executor.DEFAULT_RETRIES if retries is None else retries)
        return failed
    if executor is not None or workers <= 1:
        with warm_kernels():  # one kernel for the row notebooks run here, shut down after the rows
            for task in todo:
                fn, args, kwargs = (executor, (task,), {}) if executor else job(task)
                finished(task, *timed(fn, *args, **kwargs))
        return failed
    from concurrent.futures import as_completed

    # spawn workers (worker_pool): this process holds torch's thread pools (features), which a fork
    # would inherit broken. Inside reproduce() the batch's shared pool (and its workers' warm
    # kernels) serves every stage.
    try:
        with contextlib.ExitStack() as stack:
            pool = active_pool(workers) or stack.enter_context(worker_pool(workers, init_worker, (os.getpid(),)))
            futures = {}
            for task in todo:
                fn, args, kwargs = job(task)
                futures[pool.submit(timed, fn, *args, **kwargs)] = task
            for fut in as_completed(futures):
                finished(futures[fut], *fut.result())
    except KeyboardInterrupt:
        # Ctrl-C: worker_pool drops the queued rows at once (a normal exit would run them all first)
        print(f"interrupted: {len(todo) - len(pending)} of {len(todo)} rows finished this run "
              f"({sum(t.skip for t in tasks)} were current); rerun the same command to resume "
              f"(e.g. `cti-repro reproduce --profile {cfg.profile}`): finished rows are skipped", flush=True)
        raise
    return failed


def init_worker(parent: int) -> None:
    """A row worker process: ends with ``parent`` (:func:`watch_parent`) and keeps one warm kernel
    for the notebooks it executes (:func:`cti_repro.run.warm_kernel.keep_for_process`), shut down
    when the pool lets it exit."""
    watch_parent(parent)
    keep_for_process()


def watch_parent(parent: int, interval: float = 2.0, exit_fn: Callable[[int], Any] | None = None,
                 getppid: Callable[[], int] = os.getppid) -> Any:
    """Start a daemon thread in a worker that ends it (and its kernels) once ``parent`` is gone.

    A SIGKILLed batch cannot tell its spawned workers to stop; they would run the queued rows and
    then wait forever for a parent that is not there. The thread polls the parent id every
    ``interval`` seconds; a change means the parent died (the worker was re-parented).

    Returns:
        The started thread.
    """
    import threading

    def die(code: int) -> None:
        try:
            import psutil

            for child in psutil.Process().children(recursive=True):  # the row's Jupyter kernel
                child.kill()
        except Exception:  # best effort: the exit below matters
            pass
        os._exit(code)

    stop = exit_fn or die

    def loop() -> None:
        while True:
            time.sleep(interval)
            if getppid() != parent:
                stop(1)
                return

    t = threading.Thread(target=loop, name="cti-parent-watch", daemon=True)
    t.start()
    return t


def reproduce(
    profile: str = "embedded", seeds: list[int] | None = None, force: bool = False,
    config_path: str | Path | None = None, build_book: bool = True, workers: int | None = None, study: str = "both",
    overrides: list[str] | None = None, ablations: list[str] | None = None,
    executor: str = "local", address: str | None = None, retries: int | None = None,
) -> bool:
    """Run every row of Table 1 through its notebook, then the report notebooks and the book.

    Args:
        profile: config profile (``embedded``, ``smoke``, ``xmarket``).
        seeds: model seeds (default: the profile's ``seeds``).
        force: recompute rows whose result is current.
        config_path: study config (default ``./_config.yml``).
        build_book: also execute the report notebooks and build the HTML.
        workers: row notebooks at once (default :func:`default_workers`).
        study: ``cti`` (Table 1), ``xmodal`` (the text-image study, :mod:`cti_repro.run.xmodal.batch`),
            ``finegrained`` (:mod:`cti_repro.run.finegrained.batch`) or ``both`` (all three).
        overrides: ``--set KEY=VALUE`` overrides of the profile, for every row.
        ablations: also run these ablation variants (``[]``: the config's ``run`` set, ``["all"]``:
            every one; see :mod:`cti_repro.run.ablations`) before the report; None: none.
        executor: ``local`` (worker processes here) or ``ray`` (one Ray task per row).
        address: Ray cluster to join (``auto``: the one this node belongs to); none starts one.
        retries: attempts after a failure before a Ray row counts as failed (default 2).

    Returns:
        True if every row, every page and the book build succeeded.
    """
    from cti_repro.features import CLIP_PARTS, PARTS, load_features, xmodal_parts
    from cti_repro.data.prepare import prepare_catalogue

    config_path = Path(config_path or DEFAULT_CONFIG).resolve()
    cfg = load_config(profile, config_path, overrides=overrides)
    seeds = list(seeds) if seeds else list(cfg.seeds)
    layout, stages = book_layout(cfg), stages_for(cfg)
    with stages("data"):
        catalogue = prepare_catalogue(cfg)
        fingerprint = catalogue.fingerprint()
    from cti_repro.run.xmodal.batch import plan_xmodal, run_xmodal_rows

    from cti_repro.run.finegrained.batch import plan_finegrained, prepare_features, run_finegrained_rows

    if study not in ("cti", "xmodal", "finegrained", "both"):
        raise ValueError(f"study must be cti, xmodal, finegrained or both (all three), got {study!r}")
    tasks = plan_rows(cfg, fingerprint, layout, seeds, force) if study in ("cti", "both") else []
    xtasks = plan_xmodal(cfg, fingerprint, layout, seeds, force, RowTask) if study in ("xmodal", "both") else []
    ftasks = plan_finegrained(cfg, fingerprint, seeds, force, RowTask, layout) if study in ("finegrained", "both") else []
    if not all(t.skip for t in tasks + xtasks):
        # every part once, in this process: the row notebooks hit the cache. The text-image study's
        # CLIP parts come with them when its rows will run: one CLIP load, not two (the same seeded
        # weights); its other parts (AlexNet's fc7) get their own stage below
        xmodal_clip = tuple(p for p in xmodal_parts(cfg) if p in CLIP_PARTS)
        parts = PARTS + xmodal_clip if not all(t.skip for t in xtasks) else PARTS
        with stages("features"):
            fs = load_features(cfg, catalogue, parts)
            print(f"features: {len(fs.cache_hits)} of {len(fs.arrays)} parts were cached", flush=True)
    # the image-weights cache key, resolved once for every row (see clip_weights.exported_key)
    with exported_key(cfg.encoders.image.model, cfg.encoders.image.pretrained, cfg.encoders.image.quick_gelu), \
            contextlib.ExitStack() as stack:
        problems = execute_pages(cfg, fingerprint, layout, config_path, reports=False, force=force, stages=stages)
        workers = workers or default_workers()
        stack.enter_context(shared_pool(workers if executor == "local" else 1, init_worker, (os.getpid(),)))
        failed: list[RowTask] = []
        if tasks:  # no Table 1 stage for --study xmodal / finegrained: it would overwrite its saved time with 0 s
            with stages(f"rows ({sum(not t.skip for t in tasks)} of {len(tasks)} to run, {workers} at once)"):
                failed = run_rows(tasks, cfg, fingerprint, layout, config_path, force, workers=workers,
                                  overrides=overrides, engine=executor, address=address, retries=retries)
        if xtasks:
            rest = tuple(p for p in xmodal_parts(cfg) if p not in CLIP_PARTS)
            if rest and not all(t.skip for t in xtasks):
                with stages("text-image features"):  # once here, not in the rows at once
                    load_features(cfg, catalogue, rest)
            with stages(f"text-image rows ({sum(not t.skip for t in xtasks)} of {len(xtasks)} to run)"):
                failed += run_xmodal_rows(xtasks, cfg, fingerprint, layout, config_path, force, run_rows, workers=workers,
                                          overrides=overrides, engine=executor, address=address, retries=retries)
            tasks = tasks + xtasks
        if ftasks:
            if not all(t.skip for t in ftasks):
                with stages("fine-grained CNN features"):  # once here, not in parallel rows
                    prepare_features(cfg)
            with stages(f"fine-grained rows ({sum(not t.skip for t in ftasks)} of {len(ftasks)} to run)"):
                failed += run_finegrained_rows(ftasks, cfg, fingerprint, layout, config_path, force, run_rows,
                                               overrides=overrides, workers=workers, engine=executor, address=address,
                                               retries=retries)
            tasks = tasks + ftasks
        problems += [f"{t.label}: see {t.notebook.with_suffix('.failed.ipynb')}" for t in failed]
        if ablations is not None:
            from cti_repro.run.ablations import run_ablations

            with stages("ablations"):
                problems += run_ablations(profile, ablations, config_path, seeds, workers, force,
                                          engine=executor, address=address, retries=retries, overrides=overrides)
        if build_book and cfg.extensions.runs:  # the "Beyond the paper" chapter's runs
            from cti_repro.run.extensions import run_extensions

            with stages(f"extensions ({len(cfg.extensions.runs)} x {len(cfg.extensions.settings)} rows)"):
                try:
                    run_extensions(cfg=cfg, force=force, workers=workers)
                except Exception as exc:  # the chapter then shows what exists; Table 1 is unaffected
                    problems.append(f"extensions: {error_text(exc)}")
        built = True
        problems += write_data_files(cfg)
        if build_book:
            problems += execute_pages(cfg, fingerprint, layout, config_path, data=False, stages=stages, study=study,
                                      workers=workers)
            built = build_pages(layout, stages, seeds, cfg)
        finish(stages, problems)
        print(f"{len(tasks) - len(failed)} of {len(tasks)} rows ok" + (f", {len(failed)} FAILED" if failed else ""),
              flush=True)
        return built and not problems


def build_report(profile: str = "embedded", config_path: str | Path | None = None) -> bool:
    """Write ``comparison.csv`` / ``per_query.parquet``, execute the report notebooks (and the data
    notebook if stale) and build the book; no rows."""
    from cti_repro.data.prepare import prepare_catalogue

    config_path = Path(config_path or DEFAULT_CONFIG).resolve()
    cfg = load_config(profile, config_path)
    layout, stages = book_layout(cfg), stages_for(cfg)
    problems = write_data_files(cfg)
    problems += execute_pages(cfg, prepare_catalogue(cfg).fingerprint(), layout, config_path, stages=stages,
                              workers=default_workers())
    ok = build_pages(layout, stages, None, cfg)
    finish(stages, problems)
    return ok and not problems


__all__ = ["reproduce", "build_report", "plan_rows", "run_rows", "execute_pages", "record_failure",
           "default_workers", "RowTask"]
