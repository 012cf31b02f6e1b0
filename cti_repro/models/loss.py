"""Contrastive losses for the category / product projection heads.

Two losses, both over a batch of B aligned pairs (c_j, p_j) of head outputs:

- :func:`contrastive_loss` -- the paper's bidirectional hard-label InfoNCE (ConVIRT), eqs. 7-9,
  with cosine similarity. This is the default (``book/deviations.md`` row 16). An optional ``labels``
  argument removes same-category in-batch pairs from the negatives (ambiguity 17).
- :func:`soft_target_loss` -- the soft-target symmetric cross-entropy of the public code
  (copied from the ``moein-shariatnia/OpenAI-CLIP`` tutorial), kept for comparison.
- :func:`tree_soft_loss` / :func:`tree_margin_loss` -- tree-aware extensions (not in the paper,
  its future work 3): hierarchical soft targets, and InfoNCE plus a penalty on far pairs;
  formulas in the "tree-aware losses" section below.

Both compute the B x B similarity matrix in float32 with autocast disabled: it is tiny, and with
tau = 1 the logits live in [-1, 1], where bf16 rounding is a visible fraction of the signal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from cti_repro.device import amp_context

LossFn = Callable[..., Tensor]


def _check_pair(c: Tensor, p: Tensor) -> None:
    if c.dim() != 2 or p.dim() != 2 or c.shape != p.shape:
        raise ValueError(
            f"c and p must both be [B, d] with the same shape, got {tuple(c.shape)} and {tuple(p.shape)}"
        )


@lru_cache(maxsize=32)
def _positions(n: int, device: torch.device) -> Tensor:
    """``arange(n)`` on ``device``, the diagonal targets; built once per batch size, not per step
    (cross-entropy only reads it)."""
    return torch.arange(n, device=device)


def _over_tau(x: Tensor, tau: float) -> Tensor:
    """``x / tau``; with tau = 1 (the paper's) ``x`` itself: x / 1 is x exactly, forwards and
    backwards, and the step saves a kernel and an autograd node."""
    return x if tau == 1.0 else x / tau


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
    ``book/deviations.md`` row 17. With all labels distinct it equals the unmasked loss.

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
    with amp_context(c.device.type, False):  # the loss in float32
        if similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be cosine or dot, got {similarity!r}")
        logits = _similarity(c, p, normalize=similarity == "cosine")
        logits = logits * logit_scale.float().clamp(max=math.log(100.0)).exp() if logit_scale is not None else _over_tau(logits, tau)
        if labels is not None:
            if labels.shape != (c.shape[0],):
                raise ValueError(f"labels must have shape [{c.shape[0]}], got {tuple(labels.shape)}")
            labels = labels.to(c.device)
            same = labels[:, None] == labels[None, :]
            same.fill_diagonal_(False)  # the positive always stays in the denominator
            # -inf contributes exp(-inf) = 0 to the log-sum-exp; the mask is symmetric, so it
            # removes the same entries from rows (c->p) and columns (p->c).
            logits = logits.masked_fill(same, float("-inf"))
        target = _positions(c.shape[0], c.device)
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
    with amp_context(c.device.type, False):  # the loss in float32
        c, p = c.float(), p.float()
        if normalize:
            c, p = F.normalize(c, dim=-1), F.normalize(p, dim=-1)
        logits = _over_tau(c @ p.T, tau)
        targets = F.softmax((c @ c.T + p @ p.T) / 2 * tau, dim=-1)
        loss_c = (-targets * F.log_softmax(logits, dim=-1)).sum(1)
        loss_p = (-targets.T * F.log_softmax(logits.T, dim=-1)).sum(1)
        return ((loss_c + loss_p) / 2).mean()


# ---- tree-aware losses ---------------------------------------------------------------------
# Tree-aware contrastive losses (the paper's future work 3), over a batch of B pairs (c_j, p_j).
# 
# Both take ``D`` [B, B], the tree distance between the labels of pairs j and k
# (:func:`cti_repro.data.tree.label_distance_matrix` indexed by the batch's label ids): ``D = 0``
# for the same label, ``|depth difference|`` when one label is an ancestor of the other, ``-1``
# when the two are not on one root-to-leaf path ("far": another tree or a sibling branch).
# With ``S = cos(c_j, p_k) / tau`` (float32, autocast off, as in :mod:`cti_repro.models.loss`):
# 
# - :func:`tree_soft_loss` -- hierarchical soft targets: the target of row j spreads its mass over
#   the in-batch pairs on its path, decaying with the distance::
# 
#       W[j, k] = gamma^D[j, k]  if D[j, k] >= 0,  else 0          (W[j, j] = 1, W symmetric)
#       T[j, k] = W[j, k] / sum_k' W[j, k']
#       L = (1/B) sum_j [ lam * CE(S^T[j], T[j]) + (1 - lam) * CE(S[j], T[j]) ],
#       CE(z, t) = - sum_k t_k log softmax(z)_k
# 
#   With all labels distinct and unrelated (D = -1 off the diagonal) T is the identity and L is
#   the paper's InfoNCE (eq. 9); same-label pairs get the full weight gamma^0 = 1. So it changes
#   two things against eq. 9: same-label pairs become positives, and tree relatives get soft
#   targets. gamma = 0 keeps only the first (0^0 = 1, 0^D = 0 for D >= 1): the control
#   ``same_label`` of the beyond page, against which the tree's own effect is measured.
# 
# - :func:`tree_margin_loss` -- the paper's InfoNCE plus a hinge on far pairs::
# 
#       F = {(j, k) : D[j, k] = -1}
#       L = InfoNCE(c, p; tau, lam) + beta * (1/max(1, |F|)) sum_{(j,k) in F} max(0, cos(c_j, p_k) - m)
# 
#   i.e. a category is pushed away from products of another tree until their cosine is below m.


def _check_dist(dist: Tensor, b: int) -> None:
    if dist.shape != (b, b):
        raise ValueError(f"tree distances must be [{b}, {b}], got {tuple(dist.shape)}")


def tree_soft_loss(c: Tensor, p: Tensor, dist: Tensor, tau: float = 1.0, lam: float = 0.5, decay: float = 0.5) -> Tensor:
    """Hierarchical soft-target contrastive loss (formulas: the "tree-aware losses" comment above).

    Args:
        c: Category embeddings [B, d]; normalised here.
        p: Product embeddings [B, d]; normalised here.
        dist: Label tree distances [B, B] (-1 = not on one path).
        tau: Temperature.
        lam: Weight of the product-to-category direction.
        decay: gamma in (0, 1]: the target weight of a pair one level away (gamma^2 two levels...).

    Returns:
        Scalar float32 tensor.
    """
    _check_pair(c, p)
    _check_dist(dist, c.shape[0])
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    with amp_context(c.device.type, False):  # the loss in float32
        logits = _over_tau(_similarity(c, p, normalize=True), tau)
        dist = dist.to(logits.device)
        w = torch.where(dist >= 0, torch.pow(torch.full_like(logits, decay), dist.clamp(min=0).float()),
                        torch.zeros_like(logits))
        w.fill_diagonal_(1.0)
        t = w / w.sum(dim=1, keepdim=True)
        c2p = -(t * F.log_softmax(logits, dim=1)).sum(1).mean()
        p2c = -(t * F.log_softmax(logits.T, dim=1)).sum(1).mean()  # W symmetric: same targets per column
        return lam * p2c + (1.0 - lam) * c2p


def tree_margin_loss(
    c: Tensor, p: Tensor, dist: Tensor, tau: float = 1.0, lam: float = 0.5, beta: float = 1.0, margin: float = 0.0,
) -> Tensor:
    """InfoNCE plus a hinge on the similarity of far (off-path) pairs (the "tree-aware losses" comment above).

    Args:
        c, p: Category / product embeddings [B, d].
        dist: Label tree distances [B, B] (-1 = far).
        tau, lam: As in :func:`cti_repro.models.loss.contrastive_loss`.
        beta: Weight of the far-pair term.
        margin: m: far pairs with cosine below m cost nothing.

    Returns:
        Scalar float32 tensor.
    """
    _check_pair(c, p)
    _check_dist(dist, c.shape[0])
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    base = contrastive_loss(c, p, tau=tau, lam=lam)
    with amp_context(c.device.type, False):  # the loss in float32
        cos = _similarity(c, p, normalize=True)
        far = dist.to(cos.device) < 0
        penalty = (F.relu(cos - margin) * far).sum() / far.sum().clamp(min=1)
        return base + beta * penalty


LOSSES: dict[str, LossFn] = {"infonce": contrastive_loss, "soft": soft_target_loss}
# Need the batch's label tree distances (``build_loss(..., label_dist=...)``).
TREE_LOSSES: dict[str, LossFn] = {"tree_soft": tree_soft_loss, "tree_margin": tree_margin_loss}
LOSS_KINDS: tuple[str, ...] = (*LOSSES, *TREE_LOSSES)


def build_loss(
    kind: str, tau: float = 1.0, lam: float = 0.5, mask_same_label: bool = False, similarity: str = "cosine",
    logit_scale: Tensor | None = None, label_dist: Tensor | None = None, decay: float = 0.5, beta: float = 1.0,
    margin: float = 0.0,
) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """Bind a loss from the config into ``loss_fn(c, p, labels=None) -> Tensor``.

    Args:
        kind: ``"infonce"`` (paper eqs. 7-9), ``"soft"`` (public code's soft targets),
            ``"tree_soft"`` or ``"tree_margin"`` (tree-aware extensions).
        tau: Temperature.
        lam: lambda of eq. 9; used by ``"infonce"`` and the tree losses.
        mask_same_label: Drop same-label in-batch negatives (``"infonce"`` only); the returned
            function then requires ``labels``.
        similarity, logit_scale: see :func:`contrastive_loss` (``"infonce"`` only).
        label_dist: Tree distance between label ids, [L, L] (-1 = not on one path); required by
            the tree losses, whose function then requires ``labels`` (ids into it).
        decay: gamma of ``"tree_soft"``.
        beta, margin: weight and cosine margin of the far-pair term of ``"tree_margin"``.

    Returns:
        A callable taking category embeddings, product embeddings and optional labels.

    Raises:
        ValueError: Unknown ``kind``, ``mask_same_label`` with another loss than ``"infonce"``,
            or a tree loss without ``label_dist``.
    """
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; choose one of {sorted(LOSS_KINDS)}")
    if kind != "infonce" and (mask_same_label or logit_scale is not None or similarity != "cosine"):
        raise ValueError("mask_same_label, a learnable tau and dot similarity apply to the 'infonce' loss only")
    if kind in TREE_LOSSES:
        if label_dist is None:
            raise ValueError(f"loss {kind!r} needs the label tree distances (label_dist)")
        table = torch.as_tensor(label_dist, dtype=torch.long)
        extra = {"decay": decay} if kind == "tree_soft" else {"beta": beta, "margin": margin}
        fn = TREE_LOSSES[kind]

        def tree_fn(c: Tensor, p: Tensor, labels: Tensor | None = None) -> Tensor:
            if labels is None:
                raise ValueError(f"loss {kind!r} needs the batch's category labels")
            nonlocal table
            if table.device != labels.device:
                table = table.to(labels.device)  # once: the table then lives beside the batches
            return fn(c, p, table[labels][:, labels], tau=tau, lam=lam, **extra)

        return tree_fn
    if kind == "soft":

        def soft_fn(c: Tensor, p: Tensor, labels: Tensor | None = None) -> Tensor:
            return soft_target_loss(c, p, tau=tau)

        return soft_fn

    def infonce_fn(c: Tensor, p: Tensor, labels: Tensor | None = None) -> Tensor:
        if mask_same_label and labels is None:
            raise ValueError("mask_same_label=True needs the batch's category labels")
        return contrastive_loss(c, p, tau=tau, lam=lam, labels=labels if mask_same_label else None,
                                similarity=similarity, logit_scale=logit_scale)

    return infonce_fn
