"""The third study's models: MLF (multi-level CNN features + GRU text encoder, a dual encoder) and
Kaleido-BERT (a single-stream Transformer over text tokens and kaleido patches, a cross-encoder)."""
