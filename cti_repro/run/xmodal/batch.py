"""The text <-> image study inside ``cti-repro reproduce``: one ``xmodal_row`` notebook per (model, seed).

:func:`plan_xmodal` lists the (model, seed) rows (the zero-shot CLIP row once, for the first
seed; every other model for each of :func:`cti_repro.run.xmodal.row.xmodal_seeds`), marking those
whose result and notebook are current; :func:`run_xmodal_rows` executes them through
:func:`cti_repro.run.batch.run_rows` (same progress lines, failure records and resume rules as
the CtI rows), one at a time in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cti_repro.config import StudyConfig
from cti_repro.results import is_current
from cti_repro.run.book import BookLayout
from cti_repro.run.notebooks import execute, notebook_is_current, stamp
from cti_repro.run.xmodal.row import STUDY, xmodal_result_path, xmodal_seeds
from cti_repro.study import XMODAL_MODELS, XMODAL_TRAINED

TEMPLATE = "xmodal_row.ipynb"


def plan_xmodal(cfg: StudyConfig, fingerprint: str, layout: BookLayout, seeds: list[int] | None, force: bool,
                task: Callable[..., Any]) -> list:
    """The study's rows as ``task(setting, model, seed, result, notebook, skip)`` objects
    (:class:`cti_repro.run.batch.RowTask`, passed in by the batch so the two modules import one way)."""
    results_dir = cfg.path(cfg.results_dir).resolve()
    expected, config_hash = stamp(cfg, fingerprint, layout.templates / TEMPLATE), cfg.xmodal_hash()
    seed_list = list(seeds) if seeds else xmodal_seeds(cfg)
    tasks = []
    for model in XMODAL_MODELS:
        for seed in seed_list if model in XMODAL_TRAINED else seed_list[:1]:
            res, nb = xmodal_result_path(results_dir, model, seed), layout.xmodal_row_notebook(model, seed)
            done = not force and is_current(res, config_hash, fingerprint) and notebook_is_current(nb, expected)
            tasks.append(task(STUDY, model, seed, res, nb, done))
    return tasks


def run_xmodal_rows(tasks: list, cfg: StudyConfig, fingerprint: str, layout: BookLayout, config_path: Path,
                    force: bool, run_rows: Callable[..., list], overrides: list[str] | None = None,
                    **kwargs: Any) -> list:
    """Execute the notebooks of the tasks not marked ``skip`` with the batch's ``run_rows`` (in its
    worker processes or on Ray, as ``kwargs`` say: ``workers``, ``engine``...); return the failed tasks.
    Every row notebook gets the batch's ``--set`` ``overrides`` (its config is the batch's)."""
    template, cwd = layout.templates / TEMPLATE, Path(cfg.root).resolve()
    meta = stamp(cfg, fingerprint, template)

    def job(task) -> tuple[Callable[..., Any], tuple, dict]:
        params = {"model": task.model, "profile": cfg.profile, "seed": task.seed,
                  "results_dir": str(task.result.parent.parent), "config_path": str(config_path), "force": force,
                  "overrides": list(overrides or [])}
        return execute, (template, task.notebook, params, meta, cwd), {
            "title": f"Text-image: {task.model}, seed {task.seed}",
            "log": layout.runs / "logs" / f"xmodal_{task.model}_seed{task.seed}.log",
            "hide_parameters": True}  # papermill's injected cell holds the build machine's paths

    return run_rows(tasks, cfg, fingerprint, layout, config_path, force, job=job, overrides=overrides, **kwargs)


__all__ = ["plan_xmodal", "run_xmodal_rows", "TEMPLATE"]
