"""Checks of a built :class:`~cti_repro.config.schema.StudyConfig`: values that are well typed but
out of range, inconsistent, or that would fail late (errors name the dotted field)."""

from __future__ import annotations

from cti_repro.config.schema import ConfigError, StudyConfig
from cti_repro.config.finegrained import validate_finegrained
from cti_repro.config.xmodal import validate_xmodal
from cti_repro.study import SETTINGS

# Upper bounds with their reasons: values past them are typos that would run for months or
# allocate more memory than any machine has, not experiments.
MAX_EPOCHS = 10_000      # the paper trains 30; 10^4 epochs are days even on the smoke catalogue
MAX_DIM = 16_384         # a head is [input x dim] floats; 10^8 asks for ~150 GB before the first step
MAX_BATCH = 1 << 20      # one batch's similarity matrix is batch^2 floats
MAX_SEED = 2**32 - 1     # numpy's generators take seeds in [0, 2^32)
MAX_PRODUCTS = 10_000_000  # the synthetic generator keeps the catalogue in memory
MAX_IMAGE_SIZE = 1024    # AlexNet branch input side (Rubio et al.: 227); activations grow with its square
MAX_WORKERS = 256        # download threads / DataLoader processes: more only exhausts the machine

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
    need(cfg.data.category_key in ("name", "path"), "data.category_key", f"name or path, got {cfg.data.category_key!r}")
    need(0 <= cfg.split.disjoint_categories < 1, "split.disjoint_categories", "must be in [0, 1) (0 = off)")
    need(cfg.model.head in ("paper", "batchnorm"), "model.head", f"paper or batchnorm, got {cfg.model.head!r}")
    need(cfg.encoders.image.quick_gelu in (None, True, False), "encoders.image.quick_gelu",
         f"true, false or null (decide from the weights), got {cfg.encoders.image.quick_gelu!r}")
    need(cfg.model.dim > 0, "model.dim", "must be > 0")
    need(cfg.model.bn_hidden > 0, "model.bn_hidden", "must be > 0")
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
    need(cfg.loss.tau > 0, "loss.tau", "must be > 0 (the logits are divided by it)")
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
    need(cfg.eval.queries in ("test", "all"), "eval.queries", f"test or all, got {cfg.eval.queries!r}")
    need("{}" in cfg.encoders.clip_prompt, "encoders.clip_prompt", "must contain {} for the category")
    need(cfg.extensions.model in ("CLIP-I", "CLIP-IA", "CLIP-ITA"), "extensions.model",
         f"a trained model (CLIP-I, CLIP-IA, CLIP-ITA), got {cfg.extensions.model!r}")
    need(set(cfg.extensions.settings) <= set(SETTINGS), "extensions.settings", f"settings are {SETTINGS}")
    for name, spec in cfg.extensions.runs.items():
        need(isinstance(spec, dict), f"extensions.runs.{name}", "must map dotted keys to values")
    validate_xmodal(cfg.xmodal, need)
    validate_finegrained(cfg.finegrained, need)
    _validate_ranges(cfg, need)
    _validate_bounds(cfg, need)


def _validate_bounds(cfg: StudyConfig, need) -> None:
    """Seeds, sizes, epochs and widths within what numpy and a machine can take (issue 18 item 11)."""
    seeds = [("seeds", s) for s in cfg.seeds] + [("xmodal.seeds", s) for s in cfg.xmodal.seeds] + [
        ("split.seed", cfg.split.seed), ("split.all_draw_seed", cfg.split.all_draw_seed),
        ("eval.tie_seed", cfg.eval.tie_seed), ("data.synthetic.seed", cfg.data.synthetic.seed)]
    for field_, seed in seeds:
        need(0 <= seed <= MAX_SEED, field_, f"seeds must be in [0, 2^32 - 1] (numpy's range), got {seed}")
    for field_, epochs in (("train.epochs", cfg.train.epochs), ("xmodal.epochs", cfg.xmodal.epochs),
                           ("xmodal.word2vec.epochs", cfg.xmodal.word2vec.epochs)):
        need(epochs <= MAX_EPOCHS, field_, f"must be <= {MAX_EPOCHS:,} (the paper trains 30), got {epochs:,}")
    for field_, dim in (("model.dim", cfg.model.dim), ("xmodal.dim", cfg.xmodal.dim), ("xmodal.hidden", cfg.xmodal.hidden),
                        ("xmodal.word2vec.dim", cfg.xmodal.word2vec.dim)):
        need(dim <= MAX_DIM, field_, f"must be <= {MAX_DIM:,} (a wider head would not fit in memory), got {dim:,}")
    batches = [(f"train.batch_size.{k}", v) for k, v in cfg.train.batch_size.items()] + [
        ("xmodal.batch_size", cfg.xmodal.batch_size), ("encoders.image.batch_size", cfg.encoders.image.batch_size),
        ("encoders.text.batch_size", cfg.encoders.text.batch_size), ("eval.chunk_size", cfg.eval.chunk_size)]
    for field_, b in batches:
        need(b <= MAX_BATCH, field_, f"must be <= {MAX_BATCH:,} (batch^2 similarities per step), got {b:,}")
    need(cfg.xmodal.image_size <= MAX_IMAGE_SIZE, "xmodal.image_size",
         f"must be <= {MAX_IMAGE_SIZE} px (Rubio et al. use 227), got {cfg.xmodal.image_size:,}")
    for field_, n in (("data.xmarket.workers", cfg.data.xmarket.workers),
                      ("encoders.image.num_workers", cfg.encoders.image.num_workers)):
        need(n <= MAX_WORKERS, field_, f"must be <= {MAX_WORKERS} (threads / processes on one machine), got {n:,}")
    need(1 <= cfg.data.synthetic.products <= MAX_PRODUCTS, "data.synthetic.products",
         f"must be in [1, {MAX_PRODUCTS:,}] (the generator holds the catalogue in memory), "
         f"got {cfg.data.synthetic.products:,}")


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
    need(xm.min_attributes >= 1, "data.xmarket.min_attributes", "must be >= 1")
    need(xm.min_depth >= 2, "data.xmarket.min_depth", "must be >= 2 (a path needs a root and a leaf)")
    need(xm.max_image_bytes > 0 and xm.max_metadata_bytes > 0, "data.xmarket",
         "max_image_bytes and max_metadata_bytes must be > 0")
    need(xm.image_deadline_s > 0 and xm.metadata_deadline_s > 0, "data.xmarket",
         "image_deadline_s and metadata_deadline_s must be > 0")
    for name in ("results_dir", "cache_dir", "book_dir"):
        p = cfg.path(getattr(cfg, name))
        need(not p.exists() or p.is_dir(), name, f"{p} exists and is not a folder")
    d = cfg.data_dir
    need(not d.exists() or d.is_dir(), "data.dir", f"{d} exists and is not a folder")

