"""The study config: dataclasses for ``_config.yml``, profile merging and validation.

``_config.yml`` holds ``defaults`` (the paper's set-up) and named ``profiles`` that override parts
of it. :func:`load_config` deep-merges the chosen profile over the defaults and builds a
:class:`StudyConfig`; any unknown key, wrong type or out-of-range value raises
:class:`ConfigError` naming the file and the dotted field (``profiles.smoke.train.epochs``).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cti_repro.io_utils import stable_hash
from cti_repro.study import SETTINGS, XMARKET_URL
from cti_repro.xmodal_config import XModalConfig, validate_xmodal

DEFAULT_CONFIG = "_config.yml"


class ConfigError(ValueError):
    """The study config is malformed; the message names the file and the field."""


@dataclass
class XMarketSource:
    """``data.xmarket``: where and what to import (``book/real_data.md``; ``book/deviations.md`` row 1).

    Attributes:
        source: the XMarket base URL or a local folder with ``metadata_<market>_<Category>.json.gz``.
        market: the market code (the paper: ``us``).
        categories: XMarket file categories to import; empty = all 16.
        workers: parallel image downloads.
    """
    source: str = XMARKET_URL
    market: str = "us"
    categories: list[str] = field(default_factory=list)
    workers: int = 16
    max_image_bytes: int = 8 << 20            # larger images are refused (hostile / endless bodies)
    max_metadata_bytes: int = 4 << 30         # per metadata_*.json.gz download
    image_deadline_s: float = 120.0           # one image download, all attempts (a drip never ends)
    metadata_deadline_s: float = 4 * 3600.0   # one metadata file download, all attempts


@dataclass
class SyntheticSource:
    """``data.synthetic``: the embedded catalogue's size and seed (byte-identical per seed).

    Attributes:
        products: number of products.
        seed: generator seed.
    """
    products: int = 3000
    seed: int = 0


@dataclass
class DataConfig:
    """``data``: which catalogue the study runs on.

    Attributes:
        source: ``synthetic`` (generated), ``xmarket`` (imported) or ``dir`` (an existing catalogue folder).
        dir: the catalogue folder, relative to the config file.
        synthetic, xmarket: the source's own settings.
    """
    source: str = "synthetic"
    dir: str = "data/embedded"
    synthetic: SyntheticSource = field(default_factory=SyntheticSource)
    xmarket: XMarketSource = field(default_factory=XMarketSource)


@dataclass
class SplitConfig:
    """``split``: the product-level split shared by the three settings (``book/deviations.md`` row 5).

    Attributes:
        train, val, test: shares of the products (sum 1).
        seed: seed of the split permutation.
        all_draw_seed: seed of the once-per-product category draw of the ``all`` setting.
    """
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
        """``(train, val, test)``."""
        return (self.train, self.val, self.test)


@dataclass
class ImageEncoderConfig:
    """``encoders.image``: the open_clip image tower, also the zero-shot CLIP baseline (``book/deviations.md`` row 9).

    Attributes:
        model: open_clip architecture (``ViT-B-32``; ``Tiny-ViT-32`` ships with the package).
        pretrained: open_clip pretrained tag, a checkpoint path, or ``none``.
        allow_random: use random weights (recorded, and labelled a demonstration) when the
            pretrained ones cannot be loaded.
        batch_size: images per forward pass.
        num_workers: DataLoader workers decoding images.
    """
    model: str = "ViT-B-32"
    pretrained: str = "openai"
    allow_random: bool = False
    batch_size: int = 64
    num_workers: int = 4
    max_unreadable: float = 0.5  # image-based rows refuse a catalogue with more unreadable images


@dataclass
class TextEncoderConfig:
    """``encoders.text``: the sentence-transformers model for categories, titles, attributes (``book/deviations.md`` row 10).

    Attributes:
        model: a model id or folder; ``mpnet-offline`` / ``minilm-offline`` are the PyPI-shipped copies.
        batch_size: sentences per forward pass.
    """
    model: str = "sentence-transformers/all-mpnet-base-v2"
    batch_size: int = 128


@dataclass
class EncodersConfig:
    """``encoders``: the frozen encoders (``book/deviations.md`` row 13).

    Attributes:
        image, text: the two towers.
        clip_prompt: zero-shot CLIP query template with one ``{}`` for the category name (``book/deviations.md`` row 11).
    """
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    clip_prompt: str = "{}"


@dataclass
class BM25Config:
    """``bm25``: rank_bm25 ``BM25Okapi`` parameters over product titles (``book/deviations.md`` row 12).

    Attributes:
        k1: term-frequency saturation; b: length normalisation; epsilon: floor of negative idf.
    """
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25


@dataclass
class ModelConfig:
    """``model``: the two projection heads (``book/deviations.md`` rows 14-15).

    Attributes:
        head: ``paper`` (GELU + residual + LayerNorm) or ``batchnorm`` (the public code's head).
        dim: output dimension of both heads.
        dropout: dropout inside the head.
    """
    head: str = "paper"
    dim: int = 256
    dropout: float = 0.1
    attribute_pool: str = "mean"  # mean (eq. 5) | attention (extension: learned pooling, models/heads.py)
    normalize_modalities: bool = False  # L2-normalise each modality's features before concatenation


@dataclass
class LossConfig:
    """``loss``: the training objective (``book/deviations.md`` rows 16-17).

    Attributes:
        kind: ``infonce`` (eqs. 7-9) or ``soft`` (the public code's soft targets).
        tau: softmax temperature (the paper: 1, fixed).
        lambda_: weight of the category-to-product direction (``lambda`` in the file).
        mask_same_label: drop in-batch negatives that share the query's category.
    """
    kind: str = "infonce"
    tau: float = 1.0
    lambda_: float = 0.5
    mask_same_label: bool = False
    # Tree-aware losses (kind tree_soft / tree_margin; cti_repro.models.loss): not in the paper.
    tree_decay: float = 0.5    # tree_soft: target weight gamma^distance of an ancestor/descendant pair
    tree_beta: float = 1.0     # tree_margin: weight of the far-pair hinge
    tree_margin: float = 0.0   # tree_margin: cosine below which a far pair costs nothing
    similarity: str = "cosine"  # cosine | dot (of the unnormalised head outputs; loss and retrieval)
    learn_tau: bool = False     # learn log(1/tau) from ``tau`` as its start (CLIP's logit scale)


@dataclass
class TrainConfig:
    """``train``: optimiser, schedule and batches (``book/deviations.md`` rows 18-19).

    Attributes:
        epochs: training epochs; the weights with the lowest validation loss are kept.
        lr, weight_decay: AdamW.
        plateau_patience, plateau_factor: ReduceLROnPlateau on the validation loss.
        batch_size: per setting (the paper: 8 most general, 128 otherwise).
        device: ``auto`` | ``cpu`` | ``cuda``.
        amp: ``auto`` (bf16 autocast on CUDA only) | ``on`` | ``off``.
    """
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
    """``eval``: metrics (``book/deviations.md`` row 7).

    Attributes:
        ap_norm: the AP@k normaliser the headline numbers use (``hits`` | ``min_k_R`` | ``R``);
            all three are stored in every result.
        chunk_size: query rows scored at once (memory ``chunk_size x candidates``).
    """
    ap_norm: str = "hits"
    chunk_size: int = 1024
    tie_rule: str = "id"        # id (ascending product id) | random (a seeded permutation, eval.tie_seed)
    tie_seed: int = 0
    candidates: str = "test"    # test (the paper's test products) | all (baselines: every product)


@dataclass
class LabelsConfig:
    """``labels``: how the report labels the numbers.

    Attributes:
        demonstration: the numbers are a pipeline demonstration, not a reproduction.
    """
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
    xmodal: XModalConfig = field(default_factory=XModalConfig)
    extensions: ExtensionsConfig = field(default_factory=ExtensionsConfig)
    profile: str = "embedded"
    root: str = "."

    def path(self, rel: str) -> Path:
        """Resolve a config path against the config file's folder."""
        p = Path(rel)
        return p if p.is_absolute() else Path(self.root) / p

    @property
    def data_dir(self) -> Path:
        """The catalogue folder, resolved."""
        return self.path(self.data.dir)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data, with the file's key names (``lambda``, not ``lambda_``)."""
        d = dataclasses.asdict(self)
        d["loss"]["lambda"] = d["loss"].pop("lambda_")
        return d

    def hash(self) -> str:
        """Hash of everything that changes results (not the output folders or the root)."""
        d = self.to_dict()
        for k in ("root", "results_dir", "cache_dir", "book_dir", "seeds", "profile", "labels", "xmodal", "extensions"):
            d.pop(k, None)
        d["data"].pop("dir", None)
        for k in ("max_image_bytes", "max_metadata_bytes", "image_deadline_s", "metadata_deadline_s"):
            d["data"]["xmarket"].pop(k, None)  # download limits: they decide what is fetched, not results
        return stable_hash(d)

    def xmodal_hash(self) -> str:
        """Hash of what changes a text <-> image result: the CtI hash's inputs plus ``xmodal``."""
        x = self.to_dict()["xmodal"]
        x.pop("seeds", None)
        x.pop("gallery_queries", None)
        return stable_hash({"study": self.hash(), "xmodal": x})


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
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


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
    need(cfg.loss.similarity in ("cosine", "dot"), "loss.similarity", f"cosine or dot, got {cfg.loss.similarity!r}")
    need(not (cfg.loss.learn_tau and cfg.loss.kind == "soft"), "loss.learn_tau", "applies to the infonce loss only")
    need(cfg.loss.similarity == "cosine" or cfg.loss.kind == "infonce", "loss.similarity", "dot needs loss.kind infonce")
    need(cfg.eval.tie_rule in ("id", "random"), "eval.tie_rule", f"id or random, got {cfg.eval.tie_rule!r}")
    need(cfg.eval.candidates in ("test", "all"), "eval.candidates", f"test or all, got {cfg.eval.candidates!r}")
    need("{}" in cfg.encoders.clip_prompt, "encoders.clip_prompt", "must contain {} for the category")
    need(cfg.extensions.model in ("CLIP-I", "CLIP-IA", "CLIP-ITA"), "extensions.model",
         f"a trained model (CLIP-I, CLIP-IA, CLIP-ITA), got {cfg.extensions.model!r}")
    need(set(cfg.extensions.settings) <= set(SETTINGS), "extensions.settings", f"settings are {SETTINGS}")
    for name, spec in cfg.extensions.runs.items():
        need(isinstance(spec, dict), f"extensions.runs.{name}", "must map dotted keys to values")
    validate_xmodal(cfg.xmodal, need)
    _validate_ranges(cfg, need)


def _validate_ranges(cfg: StudyConfig, need) -> None:
    """Values that are well typed but would fail late, or silently give wrong numbers (issue 9)."""
    import string

    enc = cfg.encoders
    need(enc.image.batch_size > 0, "encoders.image.batch_size", f"must be > 0, got {enc.image.batch_size}")
    need(enc.image.num_workers >= 0, "encoders.image.num_workers", f"must be >= 0, got {enc.image.num_workers}")
    need(0 <= enc.image.max_unreadable <= 1, "encoders.image.max_unreadable", "must be in [0, 1]")
    need(enc.text.batch_size > 0, "encoders.text.batch_size", f"must be > 0, got {enc.text.batch_size}")
    need(bool(enc.image.model.strip()), "encoders.image.model", "must name an open_clip architecture")
    need(bool(enc.text.model.strip()), "encoders.text.model", "must name a text encoder")
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(enc.clip_prompt) if f is not None]
    except ValueError as exc:
        fields = [("?", str(exc), None)]
    need(fields == [("", "", None)], "encoders.clip_prompt",
         f"needs exactly one plain {{}} placeholder (write {{{{ }}}} for a literal brace), got {enc.clip_prompt!r}")
    need(cfg.train.weight_decay >= 0, "train.weight_decay", f"must be >= 0, got {cfg.train.weight_decay}")
    need(0 < cfg.train.plateau_factor < 1, "train.plateau_factor", f"must be in (0, 1), got {cfg.train.plateau_factor}")
    need(cfg.train.plateau_patience >= 0, "train.plateau_patience", "must be >= 0")
    need(cfg.bm25.k1 >= 0, "bm25.k1", f"must be >= 0, got {cfg.bm25.k1}")
    need(0 <= cfg.bm25.b <= 1, "bm25.b", f"must be in [0, 1], got {cfg.bm25.b}")
    need(cfg.bm25.epsilon >= 0, "bm25.epsilon", f"must be >= 0, got {cfg.bm25.epsilon}")
    need(cfg.eval.chunk_size > 0, "eval.chunk_size", "must be > 0")
    xm = cfg.data.xmarket
    need(xm.workers >= 1, "data.xmarket.workers", "must be >= 1")
    need(xm.max_image_bytes > 0 and xm.max_metadata_bytes > 0, "data.xmarket",
         "max_image_bytes and max_metadata_bytes must be > 0")
    need(xm.image_deadline_s > 0 and xm.metadata_deadline_s > 0, "data.xmarket",
         "image_deadline_s and metadata_deadline_s must be > 0")
    for name in ("results_dir", "cache_dir", "book_dir"):
        p = cfg.path(getattr(cfg, name))
        need(not p.exists() or p.is_dir(), name, f"{p} exists and is not a folder")
    d = cfg.data_dir
    need(not d.exists() or d.is_dir(), "data.dir", f"{d} exists and is not a folder")


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
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
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
    """The profile names of a config file (default: the repository's ``_config.yml``)."""
    path = Path(path) if path else _default_path()
    return list((yaml.safe_load(path.read_text()) or {}).get("profiles", {}))

