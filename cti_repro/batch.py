"""The batch runner: every row of Table 1 through its notebook, then the report and the book.

:func:`reproduce` is ``cti-repro reproduce``; :func:`build_report` is ``cti-repro report``.
Executed notebooks live under ``<book_dir>/runs/<profile>/`` (git-ignored)::

    data.ipynb                                        the data set page
    rows/<setting>/<model>_seed<seed>.ipynb           one row of Table 1
    rows/<setting>/<model>_seed<seed>.failed.ipynb    a row that raised (with its traceback)
    report/report_*.ipynb                             the report pages
    logs/*.log                                        the kernels' stderr

A row is skipped when its result JSON is current (same config hash and data fingerprint) and its
executed notebook exists with the same stamp, so a killed batch resumes where it stopped.
Notebooks are written under a hidden temporary name and renamed when complete; a row that raises
gets a ``status: "failed"`` record (unless a successful one exists) and the batch goes on.

Example:
    >>> from cti_repro.batch import reproduce
    >>> ok = reproduce("smoke")          # rows, report, book/_build/html/index.html
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from cti_repro.config import DEFAULT_CONFIG, StudyConfig, load_config
from cti_repro.data.pairs import SETTINGS
from cti_repro.results import TRAINED, is_current, read_result, result_path, write_result

BASELINES: tuple[str, ...] = ("BM25", "MPNet", "CLIP")
ROW_MODELS: tuple[str, ...] = BASELINES + TRAINED  # execution order: baselines first
REPORTS: tuple[str, ...] = ("report_table1", "report_training", "report_analysis")
NOTES: tuple[str, ...] = ("deviations", "real_data", "performance", "references")  # then other top-level pages
SETTING_NAMES = {"all": "all categories", "most_general": "most general category",
                 "most_specific": "most specific category"}
SOURCE_BOOK = Path(__file__).resolve().parent.parent / "book"  # the book sources of this checkout
KERNEL = "cti-repro"  # fallback kernelspec, installed into sys.prefix when python3 is not this interpreter
# Kernels run single-threaded unless the caller set these: the row work (two small heads, exact
# top-k over cached features) gains nothing from OpenMP threads, and on a busy 2-core machine
# their spin-waits made a training step ~10x slower (18 smoke rows: 4 s vs 159 s).
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class BookLayout:
    """Where the book's sources, executed notebooks and HTML are.

    Attributes:
        source: static pages (``intro.md``, ...), ``_config.yml`` and ``templates/``.
        root: the book that is built (the profile's ``book_dir``); the static pages are copied
            there when it is not ``source``.
        profile: the profile whose notebooks the table of contents lists.
        runs, templates, data_notebook, html_index: derived paths.
    """

    source: Path
    root: Path
    profile: str

    def __post_init__(self) -> None:
        derived = {"runs": self.root / "runs" / self.profile, "templates": self.source / "templates",
                   "data_notebook": self.root / "runs" / self.profile / "data.ipynb",
                   "html_index": self.root / "_build" / "html" / "index.html"}
        for k, v in derived.items():
            object.__setattr__(self, k, v)

    def row_notebook(self, setting: str, model: str, seed: int) -> Path:
        return self.runs / "rows" / setting / f"{model}_seed{seed}.ipynb"

    def report_notebook(self, name: str) -> Path:
        return self.runs / "report" / f"{name}.ipynb"


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


def book_layout(cfg: StudyConfig, source: str | Path | None = None) -> BookLayout:
    """The book of ``cfg``: built in its ``book_dir``, sources from there if it has templates."""
    root = cfg.path(cfg.book_dir).resolve()
    if source is None:
        source = root if (root / "templates").is_dir() else SOURCE_BOOK
    return BookLayout(Path(source).resolve(), root, cfg.profile)


def stamp(cfg: StudyConfig, fingerprint: str, template: Path) -> dict[str, str]:
    """What makes an executed notebook current: profile, config hash, data and template hashes."""
    digest = hashlib.sha256(template.read_bytes()).hexdigest()[:16] if template.is_file() else "missing"
    return {"profile": cfg.profile, "config_hash": cfg.hash(), "data_fingerprint": fingerprint, "template": digest}


def notebook_is_current(path: Path, expected: dict[str, str]) -> bool:
    """True if ``path`` is an executed notebook whose stamp is ``expected`` (see :func:`stamp`)."""
    try:
        meta = json.loads(path.read_text()).get("metadata", {}).get("cti_repro", {})
    except (OSError, json.JSONDecodeError):
        return False
    return meta == expected


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
    seed_list = list(cfg.seeds if seeds is None else seeds)
    for group in (BASELINES, TRAINED):
        # The baselines have no seed (frozen features; random CLIP weights use a fixed seed), so
        # they run once, for the first seed; only the trained models vary across seeds.
        for seed in seed_list if group is TRAINED else seed_list[:1]:
            for model in group:
                for setting in SETTINGS:
                    res, nb = result_path(results_dir, setting, model, seed), layout.row_notebook(setting, model, seed)
                    done = (not force and is_current(res, config_hash, fingerprint)
                            and notebook_is_current(nb, expected))
                    tasks.append(RowTask(setting, model, seed, res, nb, done))
    return tasks


# ---- notebook execution ----------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def kernel_name() -> str:
    """A kernelspec that starts *this* interpreter: ``python3`` if it does, else a sys-prefix one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    for name in ("python3", KERNEL):
        try:
            argv0 = KernelSpecManager().get_kernel_spec(name).argv[0]
        except NoSuchKernel:
            continue
        # jupyter_client replaces a bare "python" / "python3" with sys.executable
        if argv0 in bare or Path(argv0).resolve() == Path(sys.executable).resolve():
            return name
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL, display_name=f"Python ({sys.prefix})", prefix=sys.prefix)
    return KERNEL


@contextlib.contextmanager
def _kernel_context(log: Path) -> Iterator[None]:
    """For the kernels started meanwhile: :data:`KERNEL_ENV` (unless set) and fd 2 (ZMQ warnings,
    crashes) pointed at ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    added = {k: v for k, v in KERNEL_ENV.items() if k not in os.environ}
    os.environ.update(added)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            for k in added:
                os.environ.pop(k, None)


def _retitle(nb: Any, title: str) -> None:
    """Replace the first ``# heading`` (the page title) with ``title``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            rest = cell.source.lstrip().split("\n", 1)
            cell.source = f"# {title}" + (f"\n{rest[1]}" if len(rest) > 1 else "")
            return


def execute(
    template: Path, out: Path, parameters: dict[str, Any], meta: dict[str, str], cwd: Path,
    title: str | None = None, drop_tag: str | None = None, log: Path | None = None, hide_parameters: bool = False,
) -> Path:
    """Execute ``template`` with papermill into ``out``, atomically (hidden temp name, then rename).

    ``out``'s metadata gets ``cti_repro: meta`` (its :func:`stamp`: what makes it current);
    ``title`` replaces the page title; cells tagged ``drop_tag`` are removed first; the kernel's
    stderr goes to ``log``; ``hide_parameters`` keeps papermill's injected cell out of the HTML.
    On an error the executed notebook (traceback, ``FAILED`` title) is moved to
    ``<out>.failed.ipynb``, an older ``out`` removed, and the error re-raised.
    """
    import nbformat
    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    failed_out, partial = out.with_suffix(".failed.ipynb"), out.with_name(f".{out.stem}.partial.ipynb")
    nb = nbformat.read(template, as_version=4)
    if drop_tag:
        nb.cells = [c for c in nb.cells if drop_tag not in c.get("metadata", {}).get("tags", [])]
    if title:
        _retitle(nb, title)
    try:
        with _kernel_context(log or out.parent / "logs" / f"{out.stem}.log"):
            pm.execute_notebook(nb, str(partial), parameters=parameters, kernel_name=kernel_name(),
                                progress_bar=False, log_output=False, cwd=str(cwd), start_timeout=300)
    except Exception:  # (a KeyboardInterrupt leaves the hidden partial, overwritten next time)
        if partial.is_file():
            done = nbformat.read(partial, as_version=4)
            _retitle(done, f"FAILED: {title or out.stem}")
            nbformat.write(done, str(partial))
            os.replace(partial, failed_out)
            out.unlink(missing_ok=True)
        raise
    done = nbformat.read(partial, as_version=4)
    done.metadata["cti_repro"] = meta
    for cell in done.cells if hide_parameters else ():
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(done, str(partial))
    os.replace(partial, out)
    failed_out.unlink(missing_ok=True)
    return out


def _error_text(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)  # papermill's errors
    return f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"


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


def _fmt(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str | None, float]:
    """``fn(*args, **kwargs)`` -> (error text or None, seconds); runs in a worker process too."""
    t0 = time.perf_counter()
    try:
        fn(*args, **kwargs)
        return None, time.perf_counter() - t0
    except Exception as exc:  # one row must not stop the batch
        return _error_text(exc), time.perf_counter() - t0


def default_workers() -> int:
    """Row notebooks run at once: ``$CTI_REPRO_WORKERS``, else one per core up to 4 (kernels are
    single-threaded, see :data:`KERNEL_ENV`; rows are independent, so results do not depend on it)."""
    return max(1, int(os.environ.get("CTI_REPRO_WORKERS") or min(4, os.cpu_count() or 1)))


def run_rows(
    tasks: list[RowTask], cfg: StudyConfig, fingerprint: str, layout: BookLayout, config_path: Path,
    force: bool = False, executor: Callable[[RowTask], Any] | None = None, workers: int = 1,
) -> list[RowTask]:
    """Execute the row notebook of every task not marked ``skip``; return the tasks that failed.

    Prints one line per row as it finishes: ``[7/54] most_general CLIP-I seed 1: ok in 12.3 s
    (elapsed 3m10s, ~6m20s left)``; the estimate is the mean time so far of each remaining row's
    (setting, model), else of its model, else of all rows, over ``workers`` worker processes. A
    row that raises is recorded (:func:`record_failure`) and the others go on. ``executor(task)``
    replaces the notebook execution (tests; then in this process).
    """
    template, cwd = layout.templates / "row.ipynb", Path(cfg.root).resolve()
    meta = stamp(cfg, fingerprint, template)

    def job(task: RowTask) -> tuple[Callable[..., Any], tuple, dict]:
        params = {"setting": task.setting, "model": task.model, "profile": cfg.profile, "seed": task.seed,
                  "results_dir": str(task.result.parent.parent), "config_path": str(config_path), "force": force}
        return execute, (template, task.notebook, params, meta, cwd), {
            "title": f"{task.model}, {SETTING_NAMES.get(task.setting, task.setting)}, seed {task.seed}",
            "drop_tag": None if task.model in TRAINED else "trained-only",
            "log": layout.runs / "logs" / f"{task.setting}_{task.model}_seed{task.seed}.log"}

    for i, task in enumerate(tasks, 1):
        if task.skip:
            print(f"[{i}/{len(tasks)}] {task.label}: current, skipped", flush=True)
    todo = [t for t in tasks if not t.skip]
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
            nb = task.notebook.with_suffix(".failed.ipynb")
            status = f"FAILED ({error.splitlines()[0][:160] if error else '?'}); notebook: {nb}"
            try:
                record_failure(task, error, cfg, fingerprint, nb if nb.is_file() else task.notebook)
            except OSError as err:  # e.g. the results folder itself is the problem
                status += f"; no failure record ({err})"
        left = sum(guess(t) for t in pending) / max(1, min(workers, len(pending)))
        print(f"[{len(tasks) - len(pending)}/{len(tasks)}] {task.label}: {status} in {seconds:.1f} s "
              f"(elapsed {_fmt(time.perf_counter() - t_start)}, ~{_fmt(left)} left)", flush=True)

    if executor is not None or workers <= 1:
        for task in todo:
            fn, args, kwargs = (executor, (task,), {}) if executor else job(task)
            finished(task, *_timed(fn, *args, **kwargs))
        return failed
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    # spawn: this process holds torch's thread pools (features), which a fork would inherit broken
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {}
        for task in todo:
            fn, args, kwargs = job(task)
            futures[pool.submit(_timed, fn, *args, **kwargs)] = task
        for fut in as_completed(futures):
            finished(futures[fut], *fut.result())
    return failed


# ---- book ------------------------------------------------------------------------------------
def stage_book(layout: BookLayout) -> None:
    """Copy the static pages and ``_config.yml`` into the built book when it is not the source."""
    if layout.root == layout.source:
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    for p in layout.source.iterdir():
        if p.name not in ("runs", "_build", "templates", "_toc.yml") and not p.name.startswith("."):
            if p.is_dir():
                shutil.copytree(p, layout.root / p.name, dirs_exist_ok=True)
            else:
                shutil.copy2(p, layout.root / p.name)


def _seed_of(p: Path) -> int:
    return int(p.name.split("_seed")[1].split(".")[0])


def write_toc(layout: BookLayout, seeds: list[int] | None = None) -> bool:
    """Write ``_toc.yml`` (jb-book) listing the pages that exist; True if it changed.

    Parts: Data, Results (the report pages), one part per setting with its executed row
    notebooks (a failed row's notebook when it has no successful one), Notes (every other
    top-level page, :data:`NOTES` first).
    """
    import yaml

    def entry(p: Path, title: str | None = None) -> dict[str, str]:
        e = {"file": p.relative_to(layout.root).with_suffix("").as_posix()}
        return {**e, "title": title} if title else e

    parts = []
    if layout.data_notebook.is_file():
        parts.append({"caption": "Data", "chapters": [entry(layout.data_notebook)]})
    reports = [entry(layout.report_notebook(r)) for r in REPORTS if layout.report_notebook(r).is_file()]
    if reports:
        parts.append({"caption": "Results", "chapters": reports})
    for setting in SETTINGS:
        rows = []
        for model in ROW_MODELS:
            for p in sorted((layout.runs / "rows" / setting).glob(f"{model}_seed*.ipynb"), key=_seed_of):
                ok = p.with_name(f"{model}_seed{_seed_of(p)}.ipynb")
                if (seeds is None or _seed_of(p) in seeds) and (p == ok or not ok.is_file()):
                    rows.append(entry(p, f"{model}, seed {_seed_of(p)}" + ("" if p == ok else ": FAILED")))
        if rows:
            parts.append({"caption": f"Table 1 rows: {SETTING_NAMES[setting]}", "chapters": rows})
    pages = {p.stem for p in layout.root.glob("*") if p.suffix in (".md", ".ipynb")} - {"intro"}
    notes = [{"file": n} for n in sorted(pages, key=lambda n: (NOTES.index(n) if n in NOTES else len(NOTES), n))]
    if notes:
        parts.append({"caption": "Notes", "chapters": notes})
    text = ("# Generated by cti_repro.batch.write_toc (cti-repro reproduce / report): do not edit.\n"
            + yaml.safe_dump({"format": "jb-book", "root": "intro", "parts": parts}, sort_keys=False))
    path = layout.root / "_toc.yml"
    changed = not path.is_file() or path.read_text() != text
    path.write_text(text)
    return changed


def build_book(layout: BookLayout, seeds: list[int] | None = None, strict: bool = False) -> int:
    """Stage the static pages, write ``_toc.yml`` and run this environment's ``jupyter-book build``.

    Args:
        layout: the book.
        seeds: list only these seeds' row notebooks (default: every one there is).
        strict: ``-W -n --keep-going``: any warning fails the build.

    Returns:
        jupyter-book's exit code.
    """
    stage_book(layout)
    changed = write_toc(layout, seeds)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else (shutil.which("jupyter-book") or "jupyter-book"), "build", "-q"]
    cmd += ["--all"] if changed else []  # a new toc changes every page's sidebar
    cmd += ["-W", "-n", "--keep-going"] if strict else []
    return subprocess.run([*cmd, str(layout.root)], check=False).returncode


# ---- entry points ----------------------------------------------------------------------------
class _Stages(dict):
    """Stage name -> seconds; ``with stages(name):`` times and prints a stage."""

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[name] = time.perf_counter() - t0
            print(f"== {name}: {_fmt(self[name])}", flush=True)

    def summary(self) -> str:
        return ", ".join(f"{k} {_fmt(v)}" for k, v in self.items()) + f"; total {_fmt(sum(self.values()))}"


def execute_pages(
    cfg: StudyConfig, fingerprint: str, layout: BookLayout, config_path: Path, data: bool = True,
    reports: bool = True, force: bool = False, stages: _Stages | None = None,
) -> list[str]:
    """Execute the data notebook (if ``data``, unless current) and the report notebooks (if ``reports``).

    Returns:
        One line per page that failed (a missing template included).
    """
    stages, problems, todo = _Stages() if stages is None else stages, [], {}
    conf = {"profile": cfg.profile, "config_path": str(config_path)}
    if data and (force or not notebook_is_current(layout.data_notebook,
                                                  stamp(cfg, fingerprint, layout.templates / "data.ipynb"))):
        todo["data notebook"] = [("data", layout.data_notebook, conf)]
    if reports:
        params = {**conf, "results_dir": str(cfg.path(cfg.results_dir).resolve())}
        todo["report notebooks"] = [(r, layout.report_notebook(r), params) for r in REPORTS]
    for stage, jobs in todo.items():
        with stages(stage):
            for name, out, params in jobs:
                template = layout.templates / f"{name}.ipynb"
                try:
                    execute(template, out, params, stamp(cfg, fingerprint, template), Path(cfg.root).resolve(),
                            log=layout.runs / "logs" / f"{name}.log", hide_parameters=True)
                except Exception as exc:
                    problems.append(f"{name}: {_error_text(exc)} (see {out.with_suffix('.failed.ipynb')})")
    return problems


def _build(layout: BookLayout, stages: _Stages, seeds: list[int] | None) -> bool:
    with stages("book"):
        code = build_book(layout, seeds)
    print(f"HTML: file://{layout.html_index}" if code == 0 else f"jupyter-book build failed (exit {code})",
          flush=True)
    return code == 0


def _finish(stages: _Stages, problems: list[str]) -> None:
    for p in problems:
        print(f"FAILED: {p}", flush=True)
    print(f"stages: {stages.summary()}", flush=True)


def reproduce(
    profile: str = "embedded", seeds: list[int] | None = None, force: bool = False,
    config_path: str | Path | None = None, build_book: bool = True, workers: int | None = None,
) -> bool:
    """Run every row of Table 1 through its notebook, then the report notebooks and the book.

    Args:
        profile: config profile (``embedded``, ``smoke``, ``xmarket``).
        seeds: model seeds (default: the profile's ``seeds``).
        force: recompute rows whose result is current.
        config_path: study config (default ``./_config.yml``).
        build_book: also execute the report notebooks and build the HTML.
        workers: row notebooks at once (default :func:`default_workers`).

    Returns:
        True if every row, every page and the book build succeeded.
    """
    from cti_repro.features import load_features
    from cti_repro.runner import prepare_catalogue

    config_path = Path(config_path or DEFAULT_CONFIG).resolve()
    cfg = load_config(profile, config_path)
    seeds = list(seeds) if seeds else list(cfg.seeds)
    layout, stages = book_layout(cfg), _Stages()
    with stages("data"):
        catalogue = prepare_catalogue(cfg)
        fingerprint = catalogue.fingerprint()
    tasks = plan_rows(cfg, fingerprint, layout, seeds, force)
    if not all(t.skip for t in tasks):
        with stages("features"):  # every part once, in this process: the row notebooks hit the cache
            fs = load_features(cfg, catalogue)
            print(f"features: {len(fs.cache_hits)} of {len(fs.arrays)} parts were cached", flush=True)
    problems = execute_pages(cfg, fingerprint, layout, config_path, reports=False, force=force, stages=stages)
    workers = workers or default_workers()
    with stages(f"rows ({sum(not t.skip for t in tasks)} of {len(tasks)} to run, {workers} at once)"):
        failed = run_rows(tasks, cfg, fingerprint, layout, config_path, force, workers=workers)
    problems += [f"{t.label}: see {t.notebook.with_suffix('.failed.ipynb')}" for t in failed]
    built = True
    if build_book:
        problems += execute_pages(cfg, fingerprint, layout, config_path, data=False, stages=stages)
        built = _build(layout, stages, seeds)
    _finish(stages, problems)
    print(f"{len(tasks) - len(failed)} of {len(tasks)} rows ok" + (f", {len(failed)} FAILED" if failed else ""),
          flush=True)
    return built and not problems


def build_report(profile: str = "embedded", config_path: str | Path | None = None) -> bool:
    """Execute the report notebooks (and the data notebook if stale) and build the book; no rows."""
    from cti_repro.runner import prepare_catalogue

    config_path = Path(config_path or DEFAULT_CONFIG).resolve()
    cfg = load_config(profile, config_path)
    layout, stages = book_layout(cfg), _Stages()
    problems = execute_pages(cfg, prepare_catalogue(cfg).fingerprint(), layout, config_path, stages=stages)
    ok = _build(layout, stages, None)
    _finish(stages, problems)
    return ok and not problems


__all__ = ["reproduce", "build_report", "plan_rows", "stamp", "notebook_is_current", "run_rows", "execute",
           "execute_pages", "write_toc", "build_book", "book_layout", "record_failure", "kernel_name",
           "default_workers", "BookLayout", "RowTask"]
