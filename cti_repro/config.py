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
    # Category-disjoint split (not in the paper): this seeded share of the setting's labels is held
    # out, with all their products, from train/val and evaluated on (cti_repro.data.pairs). 0 = off.
    disjoint_categories: float = 0.0

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
    attribute_pool: str = "mean"  # mean (eq. 5) | attention (extension: learned pooling, models/heads.py)


@dataclass
class LossConfig:
    kind: str = "infonce"
    tau: float = 1.0
    lambda_: float = 0.5
    mask_same_label: bool = False
    # Tree-aware losses (kind tree_soft / tree_margin; cti_repro.models.loss): not in the paper.
    tree_decay: float = 0.5    # tree_soft: target weight gamma^distance of an ancestor/descendant pair
    tree_beta: float = 1.0     # tree_margin: weight of the far-pair hinge
    tree_margin: float = 0.0   # tree_margin: cosine below which a far pair costs nothing


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


@dataclass
class LabelsConfig:
    demonstration: bool = True


@dataclass
class ExtensionsConfig:
    """Runs beyond the paper (``cti_repro.run.extensions``): named override sets of one model.

    Attributes:
        model: the model every extension trains (the paper's best, CLIP-ITA).
        settings: the settings each extension runs (seed: the profile's first).
        runs: name -> dotted overrides, e.g. ``{"tree_soft": {"loss.kind": "tree_soft"}}``;
            results go to ``<results_dir>/extensions/<name>``.
    """

    model: str = "CLIP-ITA"
    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)


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
    extensions: ExtensionsConfig = field(default_factory=ExtensionsConfig)
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
        for k in ("root", "results_dir", "cache_dir", "book_dir", "seeds", "profile", "labels", "extensions"):
            d.pop(k, None)
        d["data"].pop("dir", None)
        return stable_hash(d)


def beyond_the_paper(cfg: StudyConfig) -> dict[str, Any]:
    """The extension options (not in the paper) that ``cfg`` turns on, dotted key -> value; {} = paper."""
    on = {}
    if cfg.loss.kind in ("tree_soft", "tree_margin"):
        on["loss.kind"] = cfg.loss.kind
    if cfg.model.attribute_pool != "mean":
        on["model.attribute_pool"] = cfg.model.attribute_pool
    if cfg.split.disjoint_categories > 0:
        on["split.disjoint_categories"] = cfg.split.disjoint_categories
    return on


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
            raise ConfigError(f"{where}.{field_}: {msg}")

    need(cfg.data.source in ("synthetic", "xmarket", "dir"), "data.source",
         f"must be synthetic, xmarket or dir, got {cfg.data.source!r}")
    need(abs(sum(cfg.split.fractions) - 1) < 1e-9 and min(cfg.split.fractions) >= 0,
         "split", f"train/val/test must be non-negative and sum to 1, got {cfg.split.fractions}")
    need(cfg.split.test > 0, "split.test", "must be > 0")
    need(0 <= cfg.split.disjoint_categories < 1, "split.disjoint_categories", "must be in [0, 1) (0 = off)")
    need(cfg.model.head in ("paper", "batchnorm"), "model.head", f"paper or batchnorm, got {cfg.model.head!r}")
    need(cfg.model.dim > 0, "model.dim", "must be > 0")
    need(cfg.model.attribute_pool in ("mean", "attention"), "model.attribute_pool",
         f"mean or attention, got {cfg.model.attribute_pool!r}")
    need(0 <= cfg.model.dropout < 1, "model.dropout", "must be in [0, 1)")
    need(cfg.loss.kind in ("infonce", "soft", "tree_soft", "tree_margin"), "loss.kind",
         f"infonce, soft, tree_soft or tree_margin, got {cfg.loss.kind!r}")
    need(0 <= cfg.loss.tree_decay <= 1, "loss.tree_decay", "must be in [0, 1]")
    need(cfg.loss.tree_beta >= 0, "loss.tree_beta", "must be >= 0")
    need(-1 <= cfg.loss.tree_margin <= 1, "loss.tree_margin", "must be a cosine in [-1, 1]")
    need(not (cfg.loss.mask_same_label and cfg.loss.kind != "infonce"), "loss.mask_same_label",
         "applies to loss.kind infonce only")
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
    need("{}" in cfg.encoders.clip_prompt, "encoders.clip_prompt", "must contain {} for the category")
    need(cfg.extensions.model in ("CLIP-I", "CLIP-IA", "CLIP-ITA"), "extensions.model",
         f"a trained model (CLIP-I, CLIP-IA, CLIP-ITA), got {cfg.extensions.model!r}")
    need(set(cfg.extensions.settings) <= set(SETTINGS), "extensions.settings", f"settings are {SETTINGS}")
    for name, spec in cfg.extensions.runs.items():
        need(isinstance(spec, dict), f"extensions.runs.{name}", "must map dotted keys to values")


def load_config(profile: str = "embedded", path: str | Path | None = None) -> StudyConfig:
    """Load ``_config.yml`` and resolve one profile.

    Args:
        profile: name under ``profiles:``.
        path: config file (default: ``./_config.yml``, else the repository's copy).

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
    unknown = set(raw) - {"defaults", "profiles"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    profiles = raw.get("profiles") or {}
    if profile not in profiles:
        raise ConfigError(f"{path}: profiles.{profile}: no such profile (have: {', '.join(profiles)})")
    merged = deep_merge(raw.get("defaults") or {}, profiles[profile] or {})
    cfg = _build(StudyConfig, merged, f"{path}: profiles.{profile}")
    cfg.profile = profile
    cfg.root = str(path.resolve().parent)
    _validate(cfg, f"{path}: profiles.{profile}")
    return cfg


def _default_path() -> Path:
    here = Path.cwd() / DEFAULT_CONFIG
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / DEFAULT_CONFIG


def available_profiles(path: str | Path | None = None) -> list[str]:
    path = Path(path) if path else _default_path()
    return list((yaml.safe_load(path.read_text()) or {}).get("profiles", {}))

