"""The ``xmodal:`` section of ``_config.yml``: the text <-> image study (Rubio et al. 2017).

:class:`~cti_repro.config.schema.StudyConfig` embeds :class:`XModalConfig` as ``StudyConfig.xmodal``
and :mod:`~cti_repro.config.checks` calls :func:`validate_xmodal`; the second study's settings live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


IMAGE_BRANCHES: tuple[str, ...] = ("alexnet_fc7", "alexnet", "features")


@dataclass
class XModalWord2Vec:
    dim: int = 100
    epochs: int = 20
    window: int = 5
    min_count: int = 1
    path: str = ""               # pretrained vectors: gensim KeyedVectors (.kv) or word2vec format (.bin, .bin.gz / .gz
                                 # binary, else text), e.g. the GoogleNews 300-d vectors; "" = train on the training texts


@dataclass
class XModalBoW:
    kind: str = "count"          # count (a classical bag of words, Rubio et al.) | tfidf (the TwoBranch-TFIDF variant)
    max_features: int = 5000


@dataclass
class XModalKCCA:
    n_components: int = 32       # canonical components (the joint space's size)
    nystroem_components: int = 256
    kernel: str = "rbf"
    gamma: float = 0.0           # 0 = sklearn's default (1 / n_features)
    max_descriptors: int = 10000  # training pairs used (Rubio et al.: 10,000)
    max_iter: int = 500          # the Nystroem variant's CCA iterations
    reg: float = 1.0e-3          # exact KCCA's regulariser: kappa = reg * n
    memory_gb: float = 8.0       # refuse to fit when the estimate exceeds this (or the free memory)


@dataclass
class XModalAlexNet:
    weights: str = "imagenet"    # imagenet (torchvision IMAGENET1K_V1, cached) | a state-dict file | random
    allow_random: bool = False   # fall back to random weights when the weights cannot be loaded


@dataclass
class XModalConfig:
    """The text <-> image study (Rubio et al. 2017); see :mod:`cti_repro.run.xmodal`."""

    text_fields: list[str] = field(default_factory=lambda: ["title", "attributes"])
    image_branch: str = "alexnet_fc7"  # Rubio's rows: alexnet_fc7 (frozen AlexNet to fc7, fc8 trained) |
                                       # alexnet (the whole CNN trained) | features (MLP over CLIP features)
    image_size: int = 227
    dim: int = 128
    hidden: int = 512
    dropout: float = 0.1
    margin: float = 1.0
    aux_weight: float = 1.0
    aux_level: str = "root"      # root | leaf: the category the auxiliary heads predict
    epochs: int = 20
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-4
    batch_size: int = 128
    seeds: list[int] = field(default_factory=list)  # [] = the profile's seeds
    gallery_queries: int = 8
    word2vec: XModalWord2Vec = field(default_factory=XModalWord2Vec)
    bow: XModalBoW = field(default_factory=XModalBoW)
    kcca: XModalKCCA = field(default_factory=XModalKCCA)
    alexnet: XModalAlexNet = field(default_factory=XModalAlexNet)


def validate_xmodal(x: XModalConfig, need: Callable[[bool, str, str], None]) -> None:
    """Check the ``xmodal`` section; ``need(cond, dotted_field, message)`` raises the ConfigError."""
    need(bool(x.text_fields) and set(x.text_fields) <= {"title", "attributes"}, "xmodal.text_fields",
         f"a non-empty list of title / attributes, got {x.text_fields}")
    need(x.image_branch in IMAGE_BRANCHES, "xmodal.image_branch",
         f"one of {', '.join(IMAGE_BRANCHES)}, got {x.image_branch!r}")
    need(bool(x.alexnet.weights), "xmodal.alexnet.weights", "imagenet, a state-dict file or random")
    need(x.image_size >= 63, "xmodal.image_size", "AlexNet needs at least 63 px")
    need(x.dim > 0 and x.hidden > 0, "xmodal.dim", "dim and hidden must be > 0")
    need(0 <= x.dropout < 1, "xmodal.dropout", "must be in [0, 1)")
    need(x.margin > 0, "xmodal.margin", "must be > 0")
    need(x.aux_weight >= 0, "xmodal.aux_weight", "must be >= 0")
    need(x.aux_level in ("root", "leaf"), "xmodal.aux_level", f"root or leaf, got {x.aux_level!r}")
    need(x.epochs >= 1 and x.lr > 0, "xmodal.epochs", "epochs must be >= 1 and lr > 0")
    need(x.batch_size >= 2, "xmodal.batch_size", "contrastive training needs batches of at least 2")
    need(x.word2vec.dim > 0 and x.word2vec.epochs >= 1, "xmodal.word2vec", "dim > 0 and epochs >= 1")
    need(x.bow.kind in ("tfidf", "count"), "xmodal.bow.kind", f"tfidf or count, got {x.bow.kind!r}")
    need(x.kcca.n_components >= 1 and x.kcca.nystroem_components >= x.kcca.n_components, "xmodal.kcca",
         "need 1 <= n_components <= nystroem_components")
    need(x.kcca.reg > 0, "xmodal.kcca.reg", f"must be > 0, got {x.kcca.reg}")
    need(x.kcca.max_descriptors >= 2 and x.kcca.memory_gb > 0, "xmodal.kcca.max_descriptors",
         "max_descriptors must be >= 2 and memory_gb > 0")

