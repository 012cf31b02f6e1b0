"""The study config's schema: one dataclass per section of ``_config.yml``, and :class:`StudyConfig`.

Loading, merging and overrides are :mod:`cti_repro.config.load`; value checks
:mod:`cti_repro.config.checks`; the text <-> image study's section :mod:`cti_repro.config.xmodal`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cti_repro.config.finegrained import FineGrainedConfig
from cti_repro.config.xmodal import XModalConfig
from cti_repro.io_utils import stable_hash
from cti_repro.study import SETTINGS, XMARKET_URL

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
        min_attributes: keep products with at least this many attributes (the paper's subset has
            5.87 on average; 1 keeps every product that has any).
        min_depth: keep products whose category path has at least this many levels (2: a root and
            a leaf; the paper's subset has depth 4.63 on average).
    """
    source: str = XMARKET_URL
    market: str = "us"
    categories: list[str] = field(default_factory=list)
    workers: int = 16
    max_image_bytes: int = 8 << 20            # larger images are refused (hostile / endless bodies)
    max_metadata_bytes: int = 4 << 30         # per metadata_*.json.gz download
    image_deadline_s: float = 120.0           # one image download, all attempts (a drip never ends)
    metadata_deadline_s: float = 4 * 3600.0   # one metadata file download, all attempts
    min_attributes: int = 1                   # subset filters applied at import (recorded in catalogue.json)
    min_depth: int = 2


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
        category_key: ``name`` (the paper: a category is its name) or ``path`` (its full path, so
            homonyms under different parents are different categories; the query is the path).
    """
    source: str = "synthetic"
    dir: str = "data/embedded"
    synthetic: SyntheticSource = field(default_factory=SyntheticSource)
    xmarket: XMarketSource = field(default_factory=XMarketSource)
    category_key: str = "name"


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
        quick_gelu: the activation the weights were trained with (``true``: QuickGELU, OpenAI's);
            ``null`` decides it from the tag's open_clip config or the checkpoint file's format,
            and a plain state-dict file without it is refused (``cti_repro.clip_weights``).
        batch_size: images per forward pass.
        num_workers: DataLoader workers decoding images.
    """
    model: str = "ViT-B-32"
    pretrained: str = "openai"
    allow_random: bool = False
    quick_gelu: bool | None = None
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
        bn_hidden: hidden width of the ``batchnorm`` head (the public code's ``src/model.py``: 2048).
    """
    head: str = "paper"
    dim: int = 256
    dropout: float = 0.1
    bn_hidden: int = 2048
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
    tie_rule: str = "random"        # id (ascending product id) | random (a seeded permutation, eval.tie_seed)
    tie_seed: int = 0
    candidates: str = "test"    # test (the paper's test products) | all (baselines: every product)
    queries: str = "test"       # test (labels of the test products) | all (every label of the setting; book/deviations.md row 6)


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
    finegrained: FineGrainedConfig = field(default_factory=FineGrainedConfig)  # the third study
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
        for k in ("root", "results_dir", "cache_dir", "book_dir", "seeds", "profile", "labels", "xmodal", "finegrained",
                  "extensions"):
            d.pop(k, None)
        d["data"].pop("dir", None)
        for k in ("max_image_bytes", "max_metadata_bytes", "image_deadline_s", "metadata_deadline_s"):
            d["data"]["xmarket"].pop(k, None)  # download limits: they decide what is fetched, not results
        for k in ("min_attributes", "min_depth"):  # import filters: the data fingerprint covers their effect
            d["data"]["xmarket"].pop(k, None)
        d["data"].pop("category_key", None)  # so does the fingerprint of the path-keyed catalogue
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
    if cfg.data.category_key != "name":
        on["data.category_key"] = cfg.data.category_key
    if cfg.loss.kind in ("tree_soft", "tree_margin"):
        on["loss.kind"] = cfg.loss.kind
        # the loss's own parameters where they differ from the default (tree_decay 0: the same-label control)
        default, own = LossConfig(), {"tree_soft": ("tree_decay",), "tree_margin": ("tree_beta", "tree_margin")}
        on.update({f"loss.{k}": getattr(cfg.loss, k) for k in own[cfg.loss.kind]
                   if getattr(cfg.loss, k) != getattr(default, k)})
    if cfg.model.attribute_pool != "mean":
        on["model.attribute_pool"] = cfg.model.attribute_pool
    if cfg.split.disjoint_categories > 0:
        on["split.disjoint_categories"] = cfg.split.disjoint_categories
    return on

