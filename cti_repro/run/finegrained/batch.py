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
from cti_repro.run.finegrained.row import MODELS, STUDY, finegrained_hash, finegrained_result_path, finegrained_seeds


def plan_finegrained(cfg: StudyConfig, fingerprint: str, seeds: list[int] | None, force: bool,
                     task: Callable[..., Any], layout: BookLayout) -> list:
    """The study's rows as ``task(setting, model, seed, result, notebook, skip)`` objects
    (:class:`cti_repro.run.batch.RowTask`); ``notebook`` is where a failure's log goes."""
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


def run_row(model: str, profile: str, seed: int, results_dir: str, config_path: str, force: bool,
            overrides: list[str]) -> str:
    """One row in a worker (picklable): :func:`run_finegrained` with the batch's config and overrides."""
    from cti_repro.run.finegrained.row import run_finegrained

    return str(run_finegrained(model, profile, seed, results_dir, force, config_path, sets=overrides))


def run_finegrained_rows(tasks: list, cfg: StudyConfig, fingerprint: str, layout: BookLayout, config_path: Path,
                         force: bool, run_rows: Callable[..., list], overrides: list[str] | None = None,
                         **kwargs: Any) -> list:
    """Run the tasks not marked ``skip`` with the batch's ``run_rows``; return the failed tasks."""

    def job(task) -> tuple[Callable[..., Any], tuple, dict]:
        return run_row, (task.model, cfg.profile, task.seed, str(task.result.parent.parent), str(config_path), force,
                         list(overrides or [])), {}

    return run_rows(tasks, cfg, fingerprint, layout, config_path, force, job=job, **kwargs)


__all__ = ["plan_finegrained", "prepare_features", "run_row", "run_finegrained_rows"]
