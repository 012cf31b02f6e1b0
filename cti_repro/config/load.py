"""Loading ``_config.yml``: profile merge, types, ``--set`` overrides (errors name file and field)."""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cti_repro.config.checks import _validate
from cti_repro.config.schema import DEFAULT_CONFIG, ConfigError, StudyConfig
from cti_repro.io_utils import stable_hash
from cti_repro.config.yaml_text import load_yaml, read_config_mapping

_ALIASES = {"lambda": "lambda_"}
# Numbers that YAML 1.1 (PyYAML) leaves as strings because they lack a dot: 1e-4, 5E+3, -2e10.
_YAML11_FLOAT = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+")
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
# Extension names become <results_dir>/extensions/<name> and headings of the beyond page.
EXTENSION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {k: _check_type(v, vt, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        return value
    if tp is float:
        if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string; it is the number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r} (.inf / .nan would train "
                              "on a flat or undefined loss)")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        name = _ALIASES.get(key, key)
        if name not in names:
            allowed = sorted(n.rstrip("_") for n in names)
            raise ConfigError(f"{where}.{key}: unknown field (allowed: {', '.join(allowed)})")
        kwargs[name] = _check_type(value, hints[name], f"{where}.{key}")
    return cls(**kwargs)


def load_config(
    profile: str = "embedded", path: str | Path | None = None, overrides: Sequence[str] | Mapping[str, Any] | None = None,
) -> StudyConfig:
    """Load ``_config.yml`` and resolve one profile.

    Args:
        profile: name under ``profiles:``.
        path: config file (default: ``./_config.yml``, else the repository's copy).
        overrides: ``--set`` overrides applied last, as ``["loss.tau=0.1", ...]`` (dotted key, YAML
            value) or a mapping ``{"loss.tau": 0.1}``; checked like the file, errors name the key.

    Returns:
        The validated :class:`StudyConfig`.

    Raises:
        ConfigError: unknown profile, unknown field, wrong type or value; names file and field.
    """
    path = Path(path) if path else _default_path()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if not _PROFILE_NAME.fullmatch(profile or ""):
        # the name becomes a path component (book/runs/<profile>): no "..", no separators
        raise ConfigError(f"{path}: profile {profile!r}: use letters, digits, '_', '-' and '.' (not first)")
    raw = read_config_mapping(path)
    unknown = set(raw) - {"defaults", "profiles", "ablations"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    profiles = raw.get("profiles") or {}
    for section, value in (("defaults", raw.get("defaults")), ("profiles", profiles),
                           (f"profiles.{profile}", profiles.get(profile) if isinstance(profiles, dict) else None)):
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{path}: {section}: expected a mapping, got a {type(value).__name__}")
    if profile not in profiles:
        raise ConfigError(f"{path}: profiles.{profile}: no such profile (have: {', '.join(profiles)})")
    merged = deep_merge(raw.get("defaults") or {}, profiles[profile] or {})
    sets = parse_overrides(overrides)
    for key, value in sets.items():
        merged = deep_merge(merged, _nest(key, value))
    cfg = _build(StudyConfig, merged, f"{path}: profiles.{profile}")
    cfg.profile = profile
    cfg.root = str(path.resolve().parent)
    _check_extension_runs(cfg, f"{path}: profiles.{profile}")
    _validate_blaming(cfg, f"{path}: profiles.{profile}", sets)
    move_outputs(cfg, sets)
    return cfg


def _validate_blaming(cfg: StudyConfig, where: str, sets: Mapping[str, Any]) -> None:
    """:func:`_validate`; a refused field that an override set is reported as that ``--set``."""
    try:
        _validate(cfg, where)
    except ConfigError as exc:
        field_ = getattr(exc, "field", "")
        blamed = [k for k in sets if k == field_ or k.startswith(field_ + ".") or field_.startswith(k + ".")]
        if blamed:
            raise ConfigError(f"--set {blamed[0]}={sets[blamed[0]]!r}: {exc.reason}") from None
        raise


OVERRIDES_DIR = "overrides"


def overrides_folder(sets: Mapping[str, Any]) -> str:
    """``overrides/<hash>``: the sub-folder of ``results_dir`` that a set of ``--set`` overrides writes to."""
    return f"{OVERRIDES_DIR}/{stable_hash(dict(sets))[:10]}"


def move_outputs(cfg: StudyConfig, sets: Mapping[str, Any]) -> StudyConfig:
    """Point ``cfg``'s results and book at ``<results_dir>/overrides/<hash>/`` when ``sets`` is not empty.

    The one rule for every command and executor: a run with ``--set`` overrides never writes over
    the profile's own rows or book (a variant shown as the default row). ``results_dir`` and
    ``book_dir`` given in ``sets`` themselves are kept; the book then goes to ``<results_dir>/book``.
    The feature cache is shared: its parts are keyed by what they depend on.
    """
    if sets:
        if "results_dir" not in sets:
            cfg.results_dir = str(Path(cfg.results_dir) / overrides_folder(sets))
        if "book_dir" not in sets:
            cfg.book_dir = str(Path(cfg.results_dir) / "book")
    return cfg


def apply_sets(cfg: StudyConfig, overrides: Sequence[str] | Mapping[str, Any] | None) -> StudyConfig:
    """A copy of a loaded ``cfg`` with ``--set`` overrides applied, validated and its outputs moved
    (:func:`move_outputs`), as :func:`load_config` does with ``overrides``; ``cfg`` itself if none.

    Raises:
        ConfigError: as :func:`parse_overrides`, or a value out of range (names the key).
    """
    sets = parse_overrides(overrides)
    if not sets:
        return cfg
    merged = cfg.to_dict()
    root, profile = merged.pop("root"), merged.pop("profile")
    for key, value in sets.items():
        merged = deep_merge(merged, _nest(key, value))
    out = _build(StudyConfig, merged, "--set")
    out.root, out.profile = root, profile
    _check_extension_runs(out, "--set")
    _validate_blaming(out, "--set", sets)
    return move_outputs(out, sets)


def _field_type(key: str) -> Any:
    """The declared type of dotted ``key`` in :class:`StudyConfig`; ConfigError if there is none."""
    tp: Any = StudyConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        if dataclasses.is_dataclass(tp):
            hints = {n: t for n, t in typing.get_type_hints(tp).items() if n not in ("profile", "root")}
            if _ALIASES.get(part, part) not in hints:
                raise ConfigError(f"--set {key}: unknown field {'.'.join(parts[: i + 1])} "
                                  f"(allowed: {', '.join(sorted(n.rstrip('_') for n in hints))})")
            tp = hints[_ALIASES.get(part, part)]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} is not a mapping")
    return tp


def _nest(key: str, value: Any) -> dict[str, Any]:
    return {key.split(".")[0]: _nest(key.split(".", 1)[1], value) if "." in key else value}


def parse_overrides(overrides: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["a.b=VALUE", ...]`` or ``{"a.b": value}`` -> ``{"a.b": value}``, each checked against the schema;
    VALUE is YAML (``0.1``, ``true``, ``[0, 1]``, ``{k: v}``); a later override of a key wins.

    Raises:
        ConfigError: no ``=``, an unknown key or a value of the wrong type (names the key).
    """
    if not overrides:
        return {}
    items: list[tuple[str, Any]] = []
    if isinstance(overrides, Mapping):
        items = [(str(k), v) for k, v in overrides.items()]
    else:
        for text in overrides:
            key, eq, value = str(text).partition("=")
            if not eq or not key.strip():
                raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted config key, e.g. loss.tau=0.1")
            items.append((key.strip(), load_yaml(value, f"--set {key.strip()}", aliases=False)
                          if value.strip() else ""))
    return {key: check_dotted(key, value, f"--set {key}") for key, value in items}


def check_dotted(key: str, value: Any, where: str) -> Any:
    """``value`` checked against the declared type of dotted ``key`` (as ``--set`` does); returns it.

    Raises:
        ConfigError: an unknown key or a value of the wrong type; names ``where``.
    """
    try:
        tp = _field_type(key)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(f"--set {key}", where, 1)) from None
    _check_type(value, tp, where)
    return value


def _check_extension_runs(cfg: StudyConfig, where: str) -> None:
    """``extensions.runs``: safe names (they become folder names and book text) and typed overrides.

    Raises:
        ConfigError: a name outside :data:`EXTENSION_NAME`, a run that is not a mapping, or an
            override with an unknown key or a wrongly typed value (names the run and the key).
    """
    for name, spec in cfg.extensions.runs.items():
        at = f"{where}.extensions.runs.{name}"
        if not EXTENSION_NAME.fullmatch(str(name)):
            raise ConfigError(f"{where}.extensions.runs: name {str(name)[:80]!r}: use 1-64 letters, digits, "
                              "'_', '-' and '.' (not first); it names a results folder and a book section")
        if not isinstance(spec, dict):
            raise ConfigError(f"{at}: expected a mapping of dotted keys, e.g. {{loss.kind: tree_soft}}")
        for key, value in spec.items():
            check_dotted(str(key), value, f"{at}.{key}")


def _default_path() -> Path:
    here = Path.cwd() / DEFAULT_CONFIG
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[2] / DEFAULT_CONFIG


def available_profiles(path: str | Path | None = None) -> list[str]:
    """The profile names of a config file (default: the repository's ``_config.yml``)."""
    path = Path(path) if path else _default_path()
    profiles = read_config_mapping(path).get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: profiles: expected a mapping of profile names")
    return [str(p) for p in profiles]

