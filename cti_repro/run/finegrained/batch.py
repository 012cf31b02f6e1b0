"""The fine-grained study inside ``cti-repro reproduce``: one row per (model, seed).

:func:`plan_finegrained` lists the rows (both models, each of :func:`~cti_repro.run.finegrained.row.finegrained_seeds`),
marking current ones; :func:`run_finegrained_rows` runs them through the batch's ``run_rows`` (same
progress lines, failure records, worker processes or Ray). A row calls
:func:`~cti_repro.run.finegrained.row.run_finegrained` directly rather than through a notebook:
the chapter is generated from the records (:mod:`cti_repro.report.finegrained.chapter`), and a
kernel start per row would cost more than the embedded rows themselves. The CNN features are
computed once before the rows (:func:`prepare_features`), so parallel rows hit the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cti_repro.config import StudyConfig
from cti_repro.results import is_current
from cti_repro.run.book import BookLayout
from cti_repro.run.notebooks import failed_path
from cti_repro.run.finegrained.row import MODELS, STUDY, finegrained_hash, finegrained_result_path, finegrained_seeds


def plan_finegrained(cfg: StudyConfig, fingerprint: str, seeds: list[int] | None, force: bool,
                     task: Callable[..., Any], layout: BookLayout) -> list:
    """The study's rows as ``task(setting, model, seed, result, notebook, skip)`` objects
    (:class:`cti_repro.run.batch.RowTask`); a failure's traceback goes to ``failed_path(notebook)``."""
    results_dir = cfg.path(cfg.results_dir).resolve()
    config_hash = finegrained_hash(cfg)
    tasks = []
    for model in MODELS:
        for seed in list(seeds) if seeds else finegrained_seeds(cfg):
            res = finegrained_result_path(results_dir, model, seed)
            done = not force and is_current(res, config_hash, fingerprint)
            tasks.append(task(STUDY, model, seed, res, layout.runs / "logs" / f"finegrained_{model}_seed{seed}.ipynb",
                              done))
    return tasks


def prepare_features(cfg: StudyConfig) -> dict:
    """Compute (or find) the CNN features once, in this process; returns their stats."""
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.device import pick_device
    from cti_repro.models.finegrained.cnn import load_cnn_features

    return load_cnn_features(cfg, prepare_catalogue(cfg), pick_device(cfg.train.device))[2]


def write_failure_notebook(path: Path, title: str, call: str, exc: BaseException) -> Path:
    """A one-cell notebook at ``path`` (atomically): ``title`` and the cell ``call`` with ``exc``'s traceback
    as its error output, as a failed row notebook of the other studies holds it."""
    import traceback

    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from cti_repro.io_utils import atomic_write_text

    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    cell = new_code_cell(call, outputs=[new_output("error", ename=type(exc).__name__, evalue=str(exc), traceback=tb)])
    nb = new_notebook(cells=[new_markdown_cell(f"# FAILED: {title}"), cell])
    return atomic_write_text(path, nbformat.writes(nb))


def run_row(model: str, profile: str, seed: int, results_dir: str, config_path: str, force: bool,
            overrides: list[str], notebook: str | None = None) -> str:
    """One row in a worker (picklable): :func:`run_finegrained` with the batch's config and overrides.

    The row has no notebook of its own; with ``notebook`` (the task's), a failure writes its traceback
    to :func:`~cti_repro.run.notebooks.failed_path` before it is re-raised (a success removes an older one), so the batch's
    ``FAILED ...; notebook: <path>`` line names a file that exists."""
    from cti_repro.run.finegrained.row import run_finegrained

    failed = failed_path(Path(notebook)) if notebook else None
    try:
        path = str(run_finegrained(model, profile, seed, results_dir, force, config_path, sets=overrides))
    except Exception as exc:
        if failed is not None:
            call = (f"run_finegrained({model!r}, {profile!r}, {seed}, {results_dir!r}, force={force}, "
                    f"config_path={config_path!r}, sets={overrides!r})")
            write_failure_notebook(failed, f"fine-grained {model} seed {seed}", call, exc)
        raise
    if failed is not None:
        failed.unlink(missing_ok=True)
    return path


def run_finegrained_rows(tasks: list, cfg: StudyConfig, fingerprint: str, layout: BookLayout, config_path: Path,
                         force: bool, run_rows: Callable[..., list], overrides: list[str] | None = None,
                         **kwargs: Any) -> list:
    """Run the tasks not marked ``skip`` with the batch's ``run_rows``; return the failed tasks."""

    def job(task) -> tuple[Callable[..., Any], tuple, dict]:
        return run_row, (task.model, cfg.profile, task.seed, str(task.result.parent.parent), str(config_path), force,
                         list(overrides or []), str(task.notebook)), {}

    return run_rows(tasks, cfg, fingerprint, layout, config_path, force, job=job, **kwargs)


__all__ = ["plan_finegrained", "prepare_features", "run_row", "run_finegrained_rows",
           "write_failure_notebook"]
