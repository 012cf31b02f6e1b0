"""The third study's runs: one (model, seed) row (:mod:`.row`) and its place in ``cti-repro reproduce`` (:mod:`.batch`)."""
