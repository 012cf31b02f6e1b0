"""Evaluation: exact top-k rankings, fused evaluation, the paper's metrics, TREC files. Takes arrays, never catalogues."""
