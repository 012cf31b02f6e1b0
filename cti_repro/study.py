"""The study's vocabulary, defined once: settings, models, metrics, AP normalisations, features.

Every other module, the command line's ``choices``, the notebooks and the report take these
names from here (the paper's Table 1 order: BM25, CLIP, MPNet, then the trained models), so a
new model or setting is added in one place.

Example:
    >>> from cti_repro import study
    >>> study.SETTINGS, study.MODELS[:3]
    (('all', 'most_general', 'most_specific'), ('BM25', 'CLIP', 'MPNet'))
"""

from __future__ import annotations

# ---- settings (``book/deviations.md`` rows 4-6) -----------------------------------------------------
SETTINGS: tuple[str, ...] = ("all", "most_general", "most_specific")
SETTING_LABELS: dict[str, str] = {
    "all": "All categories",
    "most_general": "Most general category",
    "most_specific": "Most specific category",
}

# ---- models: one order everywhere (Table 1's) ---------------------------------------------------
BASELINES: tuple[str, ...] = ("BM25", "CLIP", "MPNet")
TRAINED: tuple[str, ...] = ("CLIP-I", "CLIP-IA", "CLIP-ITA")
MODELS: tuple[str, ...] = BASELINES + TRAINED

# The product side of each trained model (eq. 4-6): which frozen features are concatenated.
MODALITIES: dict[str, tuple[str, ...]] = {
    "CLIP-I": ("image",),
    "CLIP-IA": ("image", "attributes"),
    "CLIP-ITA": ("image", "title", "attributes"),
}
# The cached feature parts (see cti_repro.features) each model reads.
FEATURES_BY_MODEL: dict[str, tuple[str, ...]] = {
    "BM25": (),
    "CLIP": ("image", "clip_category"),
    "MPNet": ("title", "category"),
    **{m: (*mods, "category") for m, mods in MODALITIES.items()},
}

# ---- metrics ----------------------------------------------------------------------------------
METRICS: tuple[str, ...] = ("P@1", "P@5", "P@10", "MAP@5", "MAP@10", "R-precision")
# AP@k normalisations (cti_repro.evaluation.metrics.average_precision_at_k): hits in the top k
# (the default, the only one consistent with the published numbers), min(k, R), or R.
# Graded relevance by tree distance (cti_repro.evaluation.graded); beside, never instead of, METRICS.
GRADED_METRICS: tuple[str, ...] = ("nDCG@10", "TreeDist@10")
AP_NORMS: tuple[str, ...] = ("hits", "min_k_R", "R")
AP_NORM_LABELS: dict[str, str] = {"hits": "hits", "min_k_R": "min(k,R)", "R": "R"}

# ---- the second study: product text <-> image retrieval (Rubio et al. 2017; cti_repro.run.xmodal) ----
# The rows `cti-repro reproduce` runs: Rubio et al.'s models (XMODAL_RUBIO), then our CLIP-feature variants.
XMODAL_MODELS: tuple[str, ...] = ("KCCA", "TwoBranch-BoW", "TwoBranch-w2v", "TwoBranch-w2v-noaux",
                                  "TwoBranch-w2v-CLIPfeat", "CLIP", "CLIP-heads")
# Further variants, run by command (`cti-repro xmodal run --model NAME`) and shown when their results exist.
XMODAL_VARIANTS: tuple[str, ...] = ("KCCA-Nystroem", "TwoBranch-TFIDF")
XMODAL_ALL: tuple[str, ...] = XMODAL_MODELS + XMODAL_VARIANTS
XMODAL_RUBIO: tuple[str, ...] = ("KCCA", "TwoBranch-BoW", "TwoBranch-w2v", "TwoBranch-w2v-noaux")  # their models
XMODAL_TRAINED: tuple[str, ...] = tuple(m for m in XMODAL_ALL if m != "CLIP")  # one row per seed
XMODAL_DIRECTIONS: tuple[str, ...] = ("t2i", "i2t")  # text query -> images, image query -> texts
# Keys of a result's ``means`` (percent, except MRR in [0, 1]); the first ten are the ones other tools rely on.
XMODAL_METRICS: tuple[str, ...] = (
    "MedR%_t2i", "MedR%_i2t", "R@1_t2i", "R@5_t2i", "R@10_t2i", "R@1_i2t", "R@5_i2t", "R@10_i2t", "R@5%_t2i",
    "R@5%_i2t", "R@1%_t2i", "R@1%_i2t", "R@10%_t2i", "R@10%_i2t", "MRR_t2i", "MRR_i2t",
)
XMODAL_RECALL_PERCENTS: tuple[int, ...] = (1, 5, 10)  # Recall@K% of the test set
XMODAL_RECALL_KS: tuple[int, ...] = (1, 5, 10)
# Our model -> the row of Rubio et al.'s Table 1 it corresponds to (cti_repro.report.paper.rubio2017()).
XMODAL_PUBLISHED_ROW: dict[str, str] = {"KCCA": "KCCA", "TwoBranch-BoW": "Bag of Words", "TwoBranch-w2v": "word2vec"}



def table1_rows(seeds: list[int] | tuple[int, ...]) -> list[tuple[str, str, int]]:
    """Every (setting, model, seed) row of Table 1 for ``seeds``, in execution order (baselines first).

    The baselines have no seed (frozen features; random CLIP weights use a fixed seed), so they run
    once, for the first seed; the trained models run for every seed. ``cti-repro reproduce`` plans
    these rows and ``cti-repro verify`` checks every one of them.
    """
    seeds = list(seeds)
    return [(setting, model, seed) for group in (BASELINES, TRAINED)
            for seed in (seeds if group is TRAINED else seeds[:1]) for model in group for setting in SETTINGS]

# ---- the third study: fine-grained text <-> image retrieval (MLF, Kaleido-BERT; cti_repro.run.finegrained) ----
FINEGRAINED_MODELS: tuple[str, ...] = ("MLF", "Kaleido-BERT")
FINEGRAINED_RECALL_KS: tuple[int, ...] = (1, 5, 10)  # Recall@K of the 1 + negatives protocol and of the full ranking


# ---- data -------------------------------------------------------------------------------------
XMARKET_URL = "https://ciir.cs.umass.edu/downloads/XMarket/FULL"

__all__ = ["SETTINGS", "SETTING_LABELS", "BASELINES", "TRAINED", "MODELS", "MODALITIES", "FEATURES_BY_MODEL",
           "METRICS", "GRADED_METRICS", "AP_NORMS", "AP_NORM_LABELS", "XMARKET_URL", "XMODAL_MODELS", "XMODAL_TRAINED",
           "XMODAL_VARIANTS", "XMODAL_ALL", "XMODAL_RUBIO",
           "XMODAL_DIRECTIONS", "XMODAL_METRICS", "XMODAL_RECALL_PERCENTS", "XMODAL_RECALL_KS", "XMODAL_PUBLISHED_ROW",
           "table1_rows",
           "FINEGRAINED_MODELS", "FINEGRAINED_RECALL_KS"]
