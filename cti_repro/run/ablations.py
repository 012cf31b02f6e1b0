"""The sensitivity study: every ablation variant's rows, beside the default study.

Each variant of ``ablations:`` in ``_config.yml`` (:mod:`cti_repro.config.ablations`) is the profile
with a set of ``--set`` overrides; its rows (its models x the three settings x the profile's
seeds) are written to ``<results_dir>/ablations/<variant>/<setting>/<model>_seed<seed>.json`` by
:func:`cti_repro.run.row.run_row`, in worker processes, skipping current results. The default is
the profile's own results (the Table 1 rows). The book's sensitivity page
(``report_ablations``) compares each variant with it (:mod:`cti_repro.report.ablations`).

Example:
    >>> from cti_repro.run.ablations import run_ablations
    >>> failed = run_ablations("smoke", names=["tau_0.1"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cti_repro.config.ablations import Ablation, load_ablations
from cti_repro.config import DEFAULT_CONFIG, load_config, parse_overrides
from cti_repro.results import is_current, result_path
from cti_repro.run.processes import run_in_workers
from cti_repro.run.stages import submission_order
from cti_repro.study import SETTINGS


def ablation_dir(results_dir: str | Path, name: str) -> Path:
    """Where the rows of variant ``name`` go: ``<results_dir>/ablations/<name>``."""
    return Path(results_dir) / "ablations" / name


def select(names: list[str] | None, config_path: str | Path | None = None) -> list[Ablation]:
    """The variants to run: ``names`` (``["all"]``: every variant; None or ``[]``: the ``run`` set)."""
    variants, default = load_ablations(config_path)
    if names and "all" in names:
        return list(variants.values())
    chosen = names or default
    unknown = [n for n in chosen if n not in variants]
    if unknown:
        raise ValueError(f"no such ablation variant(s) {unknown} (have: {', '.join(variants)})")
    return [variants[n] for n in chosen]


def _row(profile: str, config_path: str, overrides: dict[str, Any], out_dir: str, setting: str, model: str,
         seed: int) -> None:
    """One ablation row, in a worker process or as a Ray task (an exception propagates: Ray retries it)."""
    from cti_repro.run.row import run_row

    cfg = load_config(profile, config_path, overrides=overrides)
    run_row(setting, model, seed=seed, cfg=cfg, out_dir=Path(out_dir), progress=False)


def run_ablations(
    profile: str = "embedded", names: list[str] | None = None, config_path: str | Path | None = None,
    seeds: list[int] | None = None, workers: int = 1, force: bool = False,
    engine: str = "local", address: str | None = None, retries: int | None = None,
    overrides: list[str] | None = None,
) -> list[str]:
    """Run the rows of the chosen variants (current ones are skipped); return one line per failure.

    Args:
        profile: config profile; its ``results_dir`` holds the default rows and ``ablations/``.
        names: variants (see :func:`select`).
        config_path: study config (default ``./_config.yml``).
        seeds: model seeds (default: the profile's).
        workers: rows at once (``reproduce`` passes :func:`cti_repro.run.batch.default_workers`);
            with ``engine="ray"`` the CPUs of a local Ray cluster started here.
        force: recompute current rows.
        engine: ``local`` (worker processes) or ``ray`` (one Ray task per row, ``retries`` further
            attempts, then a recorded failure; ``address`` joins a cluster), as the batch's rows.
        overrides: the batch's ``--set`` overrides, under every variant's own (results then in
            ``<results_dir>/overrides/<hash>/ablations/``, beside the batch's rows they compare with).
    """
    from cti_repro.data.prepare import prepare_catalogue

    config_path = Path(config_path or DEFAULT_CONFIG).resolve()
    base_sets = parse_overrides(overrides)
    base = load_config(profile, config_path, overrides=base_sets)
    seeds = list(seeds) if seeds else list(base.seeds)
    results_dir = base.path(base.results_dir).resolve()
    fingerprint = prepare_catalogue(base).fingerprint()
    jobs, n_current = [], 0
    for ab in select(names, config_path):
        sets = {**base_sets, **ab.overrides}
        cfg = load_config(profile, config_path, overrides=sets)  # validates the variant first
        out = ablation_dir(results_dir, ab.name)
        for seed in seeds:
            for model in ab.models:
                for setting in SETTINGS:
                    if not force and is_current(result_path(out, setting, model, seed), cfg.hash(), fingerprint):
                        n_current += 1
                        continue
                    jobs.append((ab.name, (profile, str(config_path), sets, str(out), setting, model, seed)))
    jobs = submission_order(jobs, lambda j: (j[1][4], j[1][5]))  # longest first, as the batch's rows
    print(f"ablations: {len(jobs)} rows to run, {n_current} current", flush=True)
    failed: list[str] = []

    def done(i: int, name: str, args: tuple, err: str | None, sec: float) -> None:
        label = f"{name}: {args[4]} {args[5]} seed {args[6]}"
        print(f"[ablation {i}/{len(jobs)}] {label}: {'ok' if err is None else 'FAILED (' + err[:160] + ')'} "
              f"in {sec:.1f} s", flush=True)
        if err is not None:
            failed.append(f"{label}: {err}")

    if engine == "ray" and jobs:  # one Ray task per row, as the batch's rows (retries, then a failure)
        from cti_repro.run import ray_executor

        count = iter(range(1, len(jobs) + 1))
        ray_executor.run_rows_on_ray(
            [(i, _row, args, {}) for i, (_, args) in enumerate(jobs)],
            lambda i, err, sec: done(next(count), *jobs[i], err, sec), base, address, workers,
            ray_executor.DEFAULT_RETRIES if retries is None else retries)
        return failed
    run_in_workers(_row, jobs, workers, done)
    return failed


__all__ = ["run_ablations", "ablation_dir", "select"]
