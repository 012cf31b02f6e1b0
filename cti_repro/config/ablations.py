"""The sensitivity study's variants: the ``ablations:`` section of ``_config.yml``.

Each variant is a named set of ``--set`` overrides (dotted keys, checked like the config file) and
the models it runs; :func:`cti_repro.run.ablations.run_ablations` runs them and
:mod:`cti_repro.report.ablations` compares each with the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cti_repro.config.load import _default_path, parse_overrides
from cti_repro.config.schema import ConfigError
from cti_repro.config.yaml_text import read_config_mapping
from cti_repro.study import MODELS


@dataclass(frozen=True)
class Ablation:
    """One named variant of the sensitivity study: config overrides and the models it runs."""

    name: str
    overrides: dict[str, Any]
    models: tuple[str, ...]


def load_ablations(path: str | Path | None = None) -> tuple[dict[str, Ablation], list[str]]:
    """The ``ablations:`` section of ``_config.yml``: every variant, and the default set's names.

    Format::

        ablations:
          models: [CLIP-ITA]            # what a variant runs unless it names its own models
          run: [tau_0.1, ...]           # the set ``cti-repro reproduce --ablations`` runs
          variants:
            tau_0.1: {loss.tau: 0.1}    # dotted keys, as for --set
            baselines_all_products: {eval.candidates: all, models: [BM25, MPNet, CLIP]}

    Raises:
        ConfigError: malformed section, unknown key or model, a default naming no variant.
    """
    path = Path(path) if path else _default_path()
    raw = read_config_mapping(path).get("ablations") or {}
    where = f"{path}: ablations"
    if not isinstance(raw, dict) or set(raw) - {"models", "run", "variants"}:
        raise ConfigError(f"{where}: expected a mapping with models, run and variants")
    base_models = raw.get("models") or ["CLIP-ITA"]
    variants: dict[str, Ablation] = {}
    for name, body in (raw.get("variants") or {}).items():
        if not isinstance(body, dict):
            raise ConfigError(f"{where}.variants.{name}: expected a mapping of dotted keys")
        body = dict(body)
        models = body.pop("models", base_models)
        bad = [m for m in models if m not in MODELS]
        if bad:
            raise ConfigError(f"{where}.variants.{name}.models: unknown model(s) {bad} (have: {', '.join(MODELS)})")
        try:
            sets = parse_overrides(body)
        except ConfigError as exc:
            raise ConfigError(f"{where}.variants.{name}: {exc}") from None
        variants[str(name)] = Ablation(str(name), sets, tuple(models))
    run = list(raw.get("run") or [])
    missing = [n for n in run if n not in variants]
    if missing:
        raise ConfigError(f"{where}.run: no such variant(s) {missing} (have: {', '.join(variants)})")
    return variants, run


__all__ = ["Ablation", "load_ablations"]
