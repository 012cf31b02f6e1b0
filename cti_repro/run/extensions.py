"""Runs beyond the paper: named override sets of one trained model (the config's ``extensions``).

``_config.yml``'s ``extensions.runs`` maps a name to dotted overrides, e.g.::

    extensions:
      model: CLIP-ITA
      settings: [all, most_specific]
      runs:
        tree_soft: {loss.kind: tree_soft}
        same_label: {loss.kind: tree_soft, loss.tree_decay: 0.0}
        tree_margin: {loss.kind: tree_margin}
        attention: {model.attribute_pool: attention}
        disjoint: {split.disjoint_categories: 0.2}

Each run is :func:`cti_repro.run.row.run_row` with the overridden config, its results in
``<results_dir>/extensions/<name>/`` (same layout as Table 1's, so the report readers apply);
the profile's first seed. The extension options themselves are plain config fields (default
off), so ``cti-repro run`` runs any of them through a profile or config file too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cti_repro.config import _ALIASES, ConfigError, StudyConfig, _build, _validate, load_config


def with_overrides(cfg: StudyConfig, overrides: dict[str, Any], where: str = "overrides") -> StudyConfig:
    """A copy of ``cfg`` with dotted overrides applied and validated again.

    Args:
        cfg: a loaded config.
        overrides: ``{"loss.kind": "tree_soft", "split.disjoint_categories": 0.2}`` (typed values,
            as YAML gives them).
        where: prefix of error messages (e.g. ``_config.yml: extensions.runs.tree_soft``).

    Returns:
        A new :class:`StudyConfig` (same profile and root).

    Raises:
        ConfigError: an unknown key, a wrong type or value; names ``where`` and the dotted key.
    """
    d = cfg.to_dict()
    for key, value in overrides.items():
        node, parts = d, str(key).split(".")
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"{where}.{key}: {'.'.join(parts[: i + 1])} is not a section")
            node = node[part]
        leaf = "lambda" if _ALIASES.get(parts[-1], parts[-1]) == "lambda_" else parts[-1]  # to_dict's spelling
        if leaf not in node:
            raise ConfigError(f"{where}.{key}: unknown field (allowed: {', '.join(sorted(node))})")
        node[leaf] = value
    out = _build(StudyConfig, d, where)
    out.profile, out.root = cfg.profile, cfg.root
    _validate(out, where)
    return out


def extension_configs(cfg: StudyConfig) -> dict[str, StudyConfig]:
    """Every named extension of ``cfg`` as its own validated config."""
    return {name: with_overrides(cfg, spec, f"profiles.{cfg.profile}.extensions.runs.{name}")
            for name, spec in cfg.extensions.runs.items()}


def extensions_dir(cfg: StudyConfig) -> Path:
    """``<results_dir>/extensions``: one folder per named extension."""
    return cfg.path(cfg.results_dir) / "extensions"


def _extension_row(cfg: StudyConfig, setting: str, model: str, seed: int, out_dir: str, force: bool,
                   progress: bool) -> None:
    """One extension row (here or in a worker process)."""
    from cti_repro.run.row import run_row

    run_row(setting, model, cfg=cfg, seed=seed, out_dir=Path(out_dir), force=force, progress=progress)


def run_extensions(
    profile: str = "embedded", config_path: str | Path | None = None, names: list[str] | None = None,
    force: bool = False, progress: bool = False, cfg: StudyConfig | None = None, workers: int = 1,
) -> list[Path]:
    """Run the profile's extensions (all, or ``names``) for ``extensions.settings``; first seed.

    Args:
        profile: config profile.
        config_path: study config file.
        names: a subset of ``extensions.runs`` (default: all).
        force: recompute current results.
        progress: show training progress bars (rows run here only: ``workers <= 1``).
        cfg: an already loaded config (overrides ``profile`` / ``config_path``).
        workers: rows at once, in single-threaded worker processes
            (:func:`cti_repro.run.processes.run_in_workers`; ``reproduce`` passes its row workers).
            Rows are independent and current ones are not re-run, so only the time depends on it.

    Returns:
        The result JSON paths, in ``extensions.runs`` x ``extensions.settings`` order.

    Raises:
        ConfigError: an unknown name or a bad override.
        RuntimeError: rows failed (after every other row ran), one line per failed row.
    """
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.results import is_current, result_path
    from cti_repro.run.processes import run_in_workers

    cfg = cfg or load_config(profile, config_path)
    configs = extension_configs(cfg)
    unknown = sorted(set(names or []) - set(configs))
    if unknown:
        raise ConfigError(f"profiles.{cfg.profile}.extensions.runs: no extension(s) {unknown} (have: {sorted(configs)})")
    model, seed = cfg.extensions.model, cfg.seeds[0]
    out, jobs = [], []
    for name, ext in configs.items():
        if names and name not in names:
            continue
        fingerprint = prepare_catalogue(ext).fingerprint()
        folder = extensions_dir(cfg) / name
        for setting in cfg.extensions.settings:
            path = result_path(folder, setting, model, seed)
            out.append(path)
            if force or not is_current(path, ext.hash(), fingerprint):  # no worker started for current rows
                jobs.append((name, (ext, setting, model, seed, str(folder), force, progress and workers <= 1)))
    failed: list[str] = []

    def done(i: int, name: str, args: tuple, err: str | None, sec: float) -> None:
        label = f"extension {name}: {args[1]} {model}"
        print(f"[{i}/{len(jobs)}] {label}: {'ok' if err is None else 'FAILED (' + err[:160] + ')'} in {sec:.1f} s",
              file=sys.stderr, flush=True)
        if err is not None:
            failed.append(f"{label}: {err}")

    run_in_workers(_extension_row, jobs, workers, done)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} extension rows failed:\n" + "\n".join(failed))
    return out


__all__ = ["with_overrides", "extension_configs", "extensions_dir", "run_extensions"]
