"""A private smoke study for the text-image tests (``xmodal`` and ``finegrained``): the repository's
``_config.yml`` with the smoke profile's results, cache and data moved under a temporary folder, on a
synthetic catalogue of its own (so a module's runs never meet the session's or each other's)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def private_smoke_config(base: Path, products: int = 200) -> Path:
    """Write ``base/_config.yml``: the smoke profile with ``runs/``, ``cache/`` and ``data/`` under ``base``
    and a synthetic catalogue of ``products`` products (seed 0). Returns its path."""
    raw = yaml.safe_load((REPO / "_config.yml").read_text())
    smoke = raw["profiles"]["smoke"]
    smoke.update(results_dir=str(base / "runs"), cache_dir=str(base / "cache"),
                 data={**smoke["data"], "dir": str(base / "data"), "synthetic": {"products": products, "seed": 0}})
    path = base / "_config.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_study_cli(group: str, config: Path, model: str, *extra: str) -> int:
    """``cti-repro <group> run --model <model> --profile smoke --config <config> <extra>``: its exit code."""
    from cti_repro.cli import main

    return main([group, "run", "--model", model, "--profile", "smoke", "--config", str(config), *extra])
