"""The text <-> image study's runs: one (model, seed) row (:mod:`.row`), its models (:mod:`.models`) and its place in ``cti-repro reproduce`` (:mod:`.batch`)."""
