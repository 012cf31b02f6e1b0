"""Frozen-feature models of the study: baselines (BM25, zero-shot MPNet / CLIP), the trained heads, their loss and training loop."""
