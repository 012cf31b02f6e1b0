"""The two fine-grained models' training objectives.

MLF (a dual encoder) is trained with the bidirectional hinge (triplet) loss of VSE++ (Faghri et
al. 2018) on in-batch negatives; with S the [B, B] cosine matrix of images (rows) and texts
(columns), matching pairs on the diagonal and margin m::

    c_i2t(i, j) = max(0, m - S_ii + S_ij)   (image i, wrong text j)
    c_t2i(i, j) = max(0, m - S_jj + S_ij)   (text j, wrong image i)        for i != j
    L = 1/B * sum_i [ max_j c_i2t(i, j) + max_j c_t2i(j, i) ]   (hardest negative)
    L = 1/B * sum_i [ sum_j c_i2t(i, j) + sum_j c_t2i(j, i) ]   (all negatives)

Kaleido-BERT is fine-tuned for retrieval with its image-text matching head: a two-way softmax
over (not matched, matched) per pair, cross-entropy against the pair's label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bidirectional_hinge_loss(sim: Tensor, margin: float = 0.2, hardest: bool = True) -> Tensor:
    """The hinge loss above from a [B, B] image x text similarity matrix (matching pairs on the diagonal).

    Returns:
        Scalar float32 loss (0 for B = 1: no negative).
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square [B, B] matrix, got {tuple(sim.shape)}")
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    sim = sim.float()
    b = sim.shape[0]
    diag = sim.diagonal()
    off = ~torch.eye(b, dtype=torch.bool, device=sim.device)
    c_i2t = F.relu(margin - diag[:, None] + sim) * off  # row i: image i against wrong texts j
    c_t2i = F.relu(margin - diag[None, :] + sim) * off  # column j: text j against wrong images i
    if hardest:
        return (c_i2t.max(1).values.sum() + c_t2i.max(0).values.sum()) / b
    return (c_i2t.sum() + c_t2i.sum()) / b


def itm_loss(logits: Tensor, matched: Tensor) -> Tensor:
    """Cross-entropy of the image-text matching head: ``logits`` [P, 2] (not matched, matched), ``matched`` [P] 0/1."""
    if logits.dim() != 2 or logits.shape[1] != 2 or logits.shape[0] != matched.shape[0]:
        raise ValueError(f"logits must be [P, 2] with P = len(matched), got {tuple(logits.shape)}, {tuple(matched.shape)}")
    return F.cross_entropy(logits.float(), matched.long())


__all__ = ["bidirectional_hinge_loss", "itm_loss"]
