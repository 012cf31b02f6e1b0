"""The study config: dataclasses for ``_config.yml``, profile merging and validation.

``_config.yml`` holds ``defaults`` (the paper's set-up) and named ``profiles`` that override parts
of it. :func:`load_config` deep-merges the chosen profile over the defaults and builds a
:class:`StudyConfig`; any unknown key, wrong type or out-of-range value raises
:class:`ConfigError` naming the file and the dotted field (``profiles.smoke.train.epochs``).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cti_repro.io_utils import stable_hash
from cti_repro.study import SETTINGS, XMARKET_URL

DEFAULT_CONFIG = "_config.yml"


class ConfigError(ValueError):
    """The study config is malformed; the message names the file and the field."""


@dataclass
class XMarketSource:
    source: str = XMARKET_URL
    market: str = "us"
    categories: list[str] = field(default_factory=list)
    workers: int = 16


@dataclass
class SyntheticSource:
    products: int = 3000
    seed: int = 0


@dataclass
class DataConfig:
    source: str = "synthetic"
    dir: str = "data/embedded"
    synthetic: SyntheticSource = field(default_factory=SyntheticSource)
    xmarket: XMarketSource = field(default_factory=XMarketSource)


@dataclass
class SplitConfig:
    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    seed: int = 0
    all_draw_seed: int = 0

    @property
    def fractions(self) -> tuple[float, float, float]:
        return (self.train, self.val, self.test)


@dataclass
class ImageEncoderConfig:
    model: str = "ViT-B-32"
    pretrained: str = "openai"
    allow_random: bool = False
    batch_size: int = 64
    num_workers: int = 4


@dataclass
class TextEncoderConfig:
    model: str = "sentence-transformers/all-mpnet-base-v2"
    batch_size: int = 128


@dataclass
class EncodersConfig:
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    clip_prompt: str = "{}"


@dataclass
class BM25Config:
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25


@dataclass
class ModelConfig:
    head: str = "paper"
    dim: int = 256
    dropout: float = 0.1
    normalize_modalities: bool = False  # L2-normalise each modality's features before concatenation


@dataclass
class LossConfig:
    kind: str = "infonce"
    tau: float = 1.0
    lambda_: float = 0.5
    mask_same_label: bool = False
    similarity: str = "cosine"  # cosine | dot (of the unnormalised head outputs; loss and retrieval)
    learn_tau: bool = False     # learn log(1/tau) from ``tau`` as its start (CLIP's logit scale)


@dataclass
class TrainConfig:
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-3
    plateau_patience: int = 1
    plateau_factor: float = 0.8
    batch_size: dict[str, int] = field(
        default_factory=lambda: {"all": 128, "most_general": 8, "most_specific": 128}
    )
    device: str = "auto"
    amp: str = "auto"


@dataclass
class EvalConfig:
    ap_norm: str = "hits"
    chunk_size: int = 1024
    tie_rule: str = "id"        # id (ascending product id) | random (a seeded permutation, eval.tie_seed)
    tie_seed: int = 0
    candidates: str = "test"    # test (the paper's test products) | all (baselines: every product)


@dataclass
class LabelsConfig:
    demonstration: bool = True


@dataclass
class StudyConfig:
    """One profile of the study, fully resolved.

    Attributes:
        profile: the profile's name.
        root: folder of the config file; relative paths resolve against it.
    """

    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    encoders: EncodersConfig = field(default_factory=EncodersConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seeds: list[int] = field(default_factory=lambda: [0])
    cache_dir: str = "cache"
    results_dir: str = "runs"
    book_dir: str = "book"
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    profile: str = "embedded"
    root: str = "."

    def path(self, rel: str) -> Path:
        """Resolve a config path against the config file's folder."""
        p = Path(rel)
        return p if p.is_absolute() else Path(self.root) / p

    @property
    def data_dir(self) -> Path:
        return self.path(self.data.dir)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["loss"]["lambda"] = d["loss"].pop("lambda_")
        return d

    def hash(self) -> str:
        """Hash of everything that changes results (not the output folders or the root)."""
        d = self.to_dict()
        for k in ("root", "results_dir", "cache_dir", "book_dir", "seeds", "profile", "labels"):
            d.pop(k, None)
        d["data"].pop("dir", None)
        return stable_hash(d)


# ---- loading and validation ------------------------------------------------------------------
_ALIASES = {"lambda": "lambda_"}


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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
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


def _validate(cfg: StudyConfig, where: str) -> None:
    def need(cond: bool, field_: str, msg: str) -> None:
        if not cond:
            err = ConfigError(f"{where}.{field_}: {msg}")
            err.field, err.reason = field_, msg  # lets load_config blame a --set override
            raise err

    need(cfg.data.source in ("synthetic", "xmarket", "dir"), "data.source",
         f"must be synthetic, xmarket or dir, got {cfg.data.source!r}")
    need(abs(sum(cfg.split.fractions) - 1) < 1e-9 and min(cfg.split.fractions) >= 0,
         "split", f"train/val/test must be non-negative and sum to 1, got {cfg.split.fractions}")
    need(cfg.split.test > 0, "split.test", "must be > 0")
    need(cfg.model.head in ("paper", "batchnorm"), "model.head", f"paper or batchnorm, got {cfg.model.head!r}")
    need(cfg.model.dim > 0, "model.dim", "must be > 0")
    need(0 <= cfg.model.dropout < 1, "model.dropout", "must be in [0, 1)")
    need(cfg.loss.kind in ("infonce", "soft"), "loss.kind", f"infonce or soft, got {cfg.loss.kind!r}")
    need(cfg.loss.tau > 0, "loss.tau", "must be > 0")
    need(0 <= cfg.loss.lambda_ <= 1, "loss.lambda", "must be in [0, 1]")
    need(cfg.train.epochs >= 1, "train.epochs", "must be >= 1")
    need(cfg.train.lr > 0, "train.lr", "must be > 0")
    need(set(cfg.train.batch_size) == set(SETTINGS), "train.batch_size",
         f"needs exactly the keys {SETTINGS}, got {sorted(cfg.train.batch_size)}")
    need(all(b >= 2 for b in cfg.train.batch_size.values()), "train.batch_size",
         "contrastive training needs batches of at least 2")
    need(cfg.train.device in ("auto", "cpu", "cuda"), "train.device", "auto, cpu or cuda")
    need(cfg.train.amp in ("auto", "on", "off"), "train.amp", "auto, on or off")
    need(cfg.eval.ap_norm in ("hits", "min_k_R", "R"), "eval.ap_norm", "hits, min_k_R or R")
    need(len(cfg.seeds) >= 1, "seeds", "needs at least one seed")
    need(cfg.loss.similarity in ("cosine", "dot"), "loss.similarity", f"cosine or dot, got {cfg.loss.similarity!r}")
    need(not (cfg.loss.learn_tau and cfg.loss.kind == "soft"), "loss.learn_tau", "applies to the infonce loss only")
    need(cfg.loss.similarity == "cosine" or cfg.loss.kind == "infonce", "loss.similarity", "dot needs loss.kind infonce")
    need(cfg.eval.tie_rule in ("id", "random"), "eval.tie_rule", f"id or random, got {cfg.eval.tie_rule!r}")
    need(cfg.eval.candidates in ("test", "all"), "eval.candidates", f"test or all, got {cfg.eval.candidates!r}")
    need("{}" in cfg.encoders.clip_prompt, "encoders.clip_prompt", "must contain {} for the category")


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
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping with 'defaults' and 'profiles'")
    unknown = set(raw) - {"defaults", "profiles", "ablations"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    profiles = raw.get("profiles") or {}
    if profile not in profiles:
        raise ConfigError(f"{path}: profiles.{profile}: no such profile (have: {', '.join(profiles)})")
    merged = deep_merge(raw.get("defaults") or {}, profiles[profile] or {})
    sets = parse_overrides(overrides)
    for key, value in sets.items():
        merged = deep_merge(merged, _nest(key, value))
    cfg = _build(StudyConfig, merged, f"{path}: profiles.{profile}")
    cfg.profile = profile
    cfg.root = str(path.resolve().parent)
    try:
        _validate(cfg, f"{path}: profiles.{profile}")
    except ConfigError as exc:
        field_ = getattr(exc, "field", "")
        blamed = [k for k in sets if k == field_ or k.startswith(field_ + ".") or field_.startswith(k + ".")]
        if blamed:
            raise ConfigError(f"--set {blamed[0]}={sets[blamed[0]]!r}: {exc.reason}") from None
        raise
    return cfg


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
            try:
                items.append((key.strip(), yaml.safe_load(value) if value.strip() else ""))
            except yaml.YAMLError as exc:
                raise ConfigError(f"--set {key.strip()}: value is not valid YAML: {exc}") from None
    out: dict[str, Any] = {}
    for key, value in items:
        _check_type(value, _field_type(key), f"--set {key}")
        out[key] = value
    return out


def _default_path() -> Path:
    here = Path.cwd() / DEFAULT_CONFIG
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / DEFAULT_CONFIG


def available_profiles(path: str | Path | None = None) -> list[str]:
    path = Path(path) if path else _default_path()
    return list((yaml.safe_load(path.read_text()) or {}).get("profiles", {}))
