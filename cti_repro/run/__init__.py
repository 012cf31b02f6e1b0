"""Running the study: one row (:mod:`row`), the batch of rows (:mod:`batch`), notebooks and the book."""
