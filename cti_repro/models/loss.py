"""Contrastive losses for the category / product projection heads.

Two losses, both over a batch of B aligned pairs (c_j, p_j) of head outputs:

- :func:`contrastive_loss` -- the paper's bidirectional hard-label InfoNCE (ConVIRT), eqs. 7-9,
  with cosine similarity. This is the default (PAPER_NOTES ambiguity 16). An optional ``labels``
  argument removes same-category in-batch pairs from the negatives (ambiguity 17).
- :func:`soft_target_loss` -- the soft-target symmetric cross-entropy of the public code
  (copied from the ``moein-shariatnia/OpenAI-CLIP`` tutorial), kept for comparison.

Both compute the B x B similarity matrix in float32 with autocast disabled: it is tiny, and with
tau = 1 the logits live in [-1, 1], where bf16 rounding is a visible fraction of the signal.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[..., Tensor]


def _check_pair(c: Tensor, p: Tensor) -> None:
    if c.dim() != 2 or p.dim() != 2 or c.shape != p.shape:
        raise ValueError(
            f"c and p must both be [B, d] with the same shape, got {tuple(c.shape)} and {tuple(p.shape)}"
        )


def _similarity(c: Tensor, p: Tensor, normalize: bool) -> Tensor:
    """S[j, k] = f_sim(c_j, p_k) in float32 (cosine when ``normalize``, else dot product)."""
    c, p = c.float(), p.float()
    if normalize:
        c, p = F.normalize(c, dim=-1), F.normalize(p, dim=-1)
    return c @ p.T


def contrastive_loss(
    c: Tensor,
    p: Tensor,
    tau: float = 1.0,
    lam: float = 0.5,
    labels: Tensor | None = None,
    similarity: str = "cosine",
    logit_scale: Tensor | None = None,
) -> Tensor:
    """Bidirectional contrastive loss of the paper (eqs. 7-9), cosine similarity.

    With s(x, y) = x.y / (|x| |y|) and a batch of B pairs::

        l_j^(c->p) = -log( exp(s(c_j, p_j)/tau) / sum_k exp(s(c_j, p_k)/tau) )     (7)
        l_j^(p->c) = -log( exp(s(p_j, c_j)/tau) / sum_k exp(s(p_j, c_k)/tau) )     (8)
        L = (1/B) sum_j [ lam * l_j^(p->c) + (1 - lam) * l_j^(c->p) ]              (9)

    Each direction is a cross-entropy over the rows (c->p) or columns (p->c) of the logit matrix
    S/tau with the diagonal as target, which is the numerically stable form of (7) and (8).

    With ``labels`` (the category of each pair), every off-diagonal k with labels[k] == labels[j]
    is dropped from both denominators: a product of the same category is not a negative. This is
    *not* the paper's loss (the paper keeps them as negatives); it is the optional variant of
    PAPER_NOTES ambiguity 17. With all labels distinct it equals the unmasked loss.

    Args:
        c: Category embeddings g_c(h_c), shape [B, d]; normalised here.
        p: Product embeddings g_p(h_p), shape [B, d]; normalised here.
        tau: Temperature (the paper fixes tau = 1).
        lam: Weight lambda of the product-to-category direction (the paper uses 0.5);
            lam = 0 gives pure c->p, lam = 1 pure p->c.
        labels: Optional LongTensor [B] of category ids; enables same-label masking.
        similarity: ``"cosine"`` (the paper's s) or ``"dot"``: raw dot products of the head
            outputs, as the OpenAI-CLIP tutorial whose defaults the paper matches does.
        logit_scale: a learnable ``log(1/tau)`` (CLIP's; clamped at log 100) used instead of ``tau``.

    Returns:
        Scalar float32 tensor L.

    Example::

        >>> c, p = torch.randn(8, 256), torch.randn(8, 256)
        >>> loss = contrastive_loss(c, p, tau=1.0, lam=0.5)
    """
    _check_pair(c, p)
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    with torch.autocast(device_type=c.device.type, enabled=False):
        if similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be cosine or dot, got {similarity!r}")
        logits = _similarity(c, p, normalize=similarity == "cosine")
        logits = logits * logit_scale.float().clamp(max=math.log(100.0)).exp() if logit_scale is not None else logits / tau
        if labels is not None:
            if labels.shape != (c.shape[0],):
                raise ValueError(f"labels must have shape [{c.shape[0]}], got {tuple(labels.shape)}")
            labels = labels.to(c.device)
            same = labels[:, None] == labels[None, :]
            same.fill_diagonal_(False)  # the positive always stays in the denominator
            # -inf contributes exp(-inf) = 0 to the log-sum-exp; the mask is symmetric, so it
            # removes the same entries from rows (c->p) and columns (p->c).
            logits = logits.masked_fill(same, float("-inf"))
        target = torch.arange(c.shape[0], device=c.device)
        loss_c2p = F.cross_entropy(logits, target)  # rows: category j against all products
        loss_p2c = F.cross_entropy(logits.T, target)  # columns: product j against all categories
        return lam * loss_p2c + (1.0 - lam) * loss_c2p


def soft_target_loss(
    c: Tensor,
    p: Tensor,
    tau: float = 1.0,
    normalize: bool = True,
    labels: Tensor | None = None,
) -> Tensor:
    """Soft-target symmetric cross-entropy of the public code (OpenAI-CLIP tutorial).

    With logits Z = (c p^T) / tau and soft targets built from the in-modality similarities::

        T = softmax( (c c^T + p p^T) / 2 * tau , dim=-1 )
        CE(Z, T)_j = - sum_k T[j, k] * log_softmax(Z)[j, k]
        L = (1/B) sum_j ( CE(Z, T)_j + CE(Z^T, T^T)_j ) / 2

    Note the tutorial *multiplies* by tau inside the target softmax (and divides in the logits);
    with tau = 1 the two agree. Pairs with near-identical embeddings share target mass, so this
    loss softens in-batch duplicates by construction.

    Normalisation: the tutorial uses raw head outputs (no normalisation); the public CtI repo
    L2-normalises inside its head, and the paper uses cosine similarity. ``normalize=True``
    (default) therefore L2-normalises c and p first; ``normalize=False`` is the tutorial exactly.

    Args:
        c: Category embeddings, shape [B, d] (the tutorial's text side).
        p: Product embeddings, shape [B, d] (the tutorial's image side).
        tau: Temperature.
        normalize: L2-normalise c and p before all products (see above).
        labels: Accepted for a uniform loss signature and ignored.

    Returns:
        Scalar float32 tensor L.
    """
    del labels  # soft targets need no labels
    _check_pair(c, p)
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    with torch.autocast(device_type=c.device.type, enabled=False):
        c, p = c.float(), p.float()
        if normalize:
            c, p = F.normalize(c, dim=-1), F.normalize(p, dim=-1)
        logits = (c @ p.T) / tau
        targets = F.softmax((c @ c.T + p @ p.T) / 2 * tau, dim=-1)
        loss_c = (-targets * F.log_softmax(logits, dim=-1)).sum(1)
        loss_p = (-targets.T * F.log_softmax(logits.T, dim=-1)).sum(1)
        return ((loss_c + loss_p) / 2).mean()


LOSSES: dict[str, LossFn] = {"infonce": contrastive_loss, "soft": soft_target_loss}


def build_loss(
    kind: str, tau: float = 1.0, lam: float = 0.5, mask_same_label: bool = False, similarity: str = "cosine",
    logit_scale: Tensor | None = None,
) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """Bind a loss from the config into ``loss_fn(c, p, labels=None) -> Tensor``.

    Args:
        kind: ``"infonce"`` (paper eqs. 7-9) or ``"soft"`` (public code's soft targets).
        tau: Temperature.
        lam: lambda of eq. 9; used by ``"infonce"`` only.
        mask_same_label: Drop same-label in-batch negatives (``"infonce"`` only); the returned
            function then requires ``labels``.
        similarity, logit_scale: see :func:`contrastive_loss` (``"infonce"`` only).

    Returns:
        A callable taking category embeddings, product embeddings and optional labels.

    Raises:
        ValueError: Unknown ``kind``, or ``mask_same_label`` with ``"soft"``.
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown loss kind {kind!r}; choose one of {sorted(LOSSES)}")
    if kind == "soft":
        if mask_same_label or logit_scale is not None or similarity != "cosine":
            raise ValueError("mask_same_label, a learnable tau and dot similarity apply to the 'infonce' loss only")

        def soft_fn(c: Tensor, p: Tensor, labels: Tensor | None = None) -> Tensor:
            return soft_target_loss(c, p, tau=tau)

        return soft_fn

    def infonce_fn(c: Tensor, p: Tensor, labels: Tensor | None = None) -> Tensor:
        if mask_same_label and labels is None:
            raise ValueError("mask_same_label=True needs the batch's category labels")
        return contrastive_loss(c, p, tau=tau, lam=lam, labels=labels if mask_same_label else None,
                                similarity=similarity, logit_scale=logit_scale)

    return infonce_fn
