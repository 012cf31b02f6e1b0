"""Projection heads and the category-to-image (CtI) model.

The encoders (CLIP image, MPNet text) are frozen and their features precomputed elsewhere
(``features.py``); only the two heads here train (``book/deviations.md`` row 13):

    c = g_c(h_c)                                   (eq. 2)
    p = g_p(concat(h_i, h_t, h_a))                 (eq. 6)

CLIP-I, CLIP-IA and CLIP-ITA are one class, :class:`CtIModel`, configured by the product
modalities it concatenates. Outputs are not normalised: the loss and retrieval do that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cti_repro.study import MODALITIES

# Eq. 6 fixes the concatenation order; every model uses this order whatever it was given.
PRODUCT_ORDER: tuple[str, ...] = ("image", "title", "attributes")


HEADS: tuple[str, ...] = ("paper", "batchnorm")
ATTRIBUTE_POOLS: tuple[str, ...] = ("mean", "attention")


class AttentionPool(nn.Module):
    """Learned attention pooling over a product's attribute embeddings (extension; eq. 5 is the mean).

    Additive attention with a learned query ``u``, over the n attribute embeddings x_i of a
    product (rows of a frozen table, looked up by index; -1 pads)::

        e_i = u . tanh(W x_i + b)
        a   = softmax(e) over the product's real attributes
        h_a = sum_i a_i x_i                 (0 for a product without attributes, as eq. 5)

    ``u`` starts at zero, so training starts from eq. 5's mean exactly.

    Args:
        d_in: Attribute embedding size.
        hidden: Width of the scoring layer.
    """

    def __init__(self, d_in: int, hidden: int = 128) -> None:
        super().__init__()
        self.key = nn.Linear(d_in, hidden)
        self.query = nn.Parameter(torch.zeros(hidden))
        self.register_buffer("table", torch.zeros(0, d_in), persistent=False)  # the frozen values

    def set_table(self, values: Tensor) -> None:
        """The frozen per-attribute embeddings [U, d_in] (not saved in checkpoints)."""
        self.table = torch.as_tensor(values, dtype=torch.float32, device=self.query.device)

    def forward(self, index: Tensor) -> Tensor:
        """[B, A] value rows (-1 = padding) -> pooled [B, d_in]."""
        mask = index >= 0
        x = self.table[index.clamp(min=0)].to(self.query.dtype)  # [B, A, d]
        e = torch.tanh(self.key(x)) @ self.query  # [B, A]
        e = e.masked_fill(~mask, float("-inf"))
        a = torch.softmax(e, dim=-1).nan_to_num(0.0)  # a row of pads only: 0/0 -> 0
        return (a.unsqueeze(-1) * x).sum(1)


class ProjectionHead(nn.Module):
    """The paper's head: a residual GELU MLP with LayerNorm (the OpenAI-CLIP tutorial's head).

    ::

        z = W1 x + b1                      (projection, d_in -> d_out)
        y = LayerNorm( z + Dropout( W2 GELU(z) + b2 ) )

    Args:
        d_in: Input feature size.
        d_out: Output size d (256 in the tutorial; the paper does not state it).
        dropout: Dropout on the second Linear's output.
    """

    def __init__(self, d_in: int, d_out: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.projection = nn.Linear(d_in, d_out)
        self.gelu = nn.GELU()
        self.fc = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(d_out)

    def forward(self, x: Tensor) -> Tensor:
        projected = self.projection(x)
        x = self.fc(self.gelu(projected))
        x = self.dropout(x)
        return self.layer_norm(x + projected)


class BatchNormHead(nn.Module):
    """The public code's head: ``Linear -> BatchNorm1d -> ReLU -> Linear(bias=False)``.

    ::

        y = W2 ReLU( BN( W1 x + b1 ) )

    The public code L2-normalises the output inside the head; here the loss does it. BatchNorm
    needs batches of at least 2 in training mode.

    Args:
        d_in: Input feature size.
        d_out: Output size d.
        hidden: Hidden width (default ``d_out``; the public code uses 2048 throughout).
    """

    def __init__(self, d_in: int, d_out: int = 256, hidden: int | None = None) -> None:
        super().__init__()
        hidden = d_out if hidden is None else hidden
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, d_out, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_head(kind: str, d_in: int, d_out: int = 256, dropout: float = 0.1, hidden: int | None = None) -> nn.Module:
    """Build a projection head by name.

    Args:
        kind: ``"paper"`` (:class:`ProjectionHead`) or ``"batchnorm"`` (:class:`BatchNormHead`,
            which has no dropout, so ``dropout`` is ignored).
        d_in: Input feature size.
        d_out: Output size d.
        dropout: Dropout of the paper head.
        hidden: Hidden width of the BatchNorm head (``None``: ``d_out``); the paper head ignores it.

    Returns:
        The head module.
    """
    if kind == "paper":
        return ProjectionHead(d_in, d_out, dropout)
    if kind == "batchnorm":
        return BatchNormHead(d_in, d_out, hidden)
    raise ValueError(f"unknown head kind {kind!r}; choose one of {list(HEADS)}")


class CtIModel(nn.Module):
    """Category head g_c and product head g_p over precomputed, frozen encoder features.

    Args:
        modalities: Product modalities to concatenate, a subset of ("image", "title",
            "attributes"); they are always concatenated in that order (eq. 6).
        dims: Feature size of each modality, e.g. ``{"image": 512, "title": 768,
            "attributes": 768}``; extra entries are ignored.
        category_dim: Feature size of the category encoder output h_c.
        head: ``"paper"`` or ``"batchnorm"``, used for both heads.
        d: Shared output size of both heads.
        dropout: Dropout of the paper head.
        attribute_pool: ``"mean"`` (eq. 5: ``feats["attributes"]`` is the cached mean [B, d_a]) or
            ``"attention"`` (:class:`AttentionPool`: ``feats["attributes"]`` is a [B, A] index
            into the table given to :meth:`set_attribute_table`).
        normalize_modalities: L2-normalise each modality's features before the concatenation, so
            a block with a large norm (random ViT-B-32 image features: ~22) does not drown the
            unit-norm text blocks.
        learn_tau: hold a learnable ``logit_scale = log(1/tau)`` (CLIP's), started at ``tau``.
        tau: the temperature ``logit_scale`` starts from.
        bn_hidden: hidden width of the ``batchnorm`` head (``None``: ``d``; the study's
            ``model.bn_hidden`` defaults to the public code's 2048).

    Example::

        >>> dims = {"image": 512, "title": 768, "attributes": 768}
        >>> model = CtIModel.from_name("CLIP-ITA", dims, category_dim=768)
        >>> feats = {k: torch.randn(4, n) for k, n in dims.items()}
        >>> c, p = model(torch.randn(4, 768), feats)   # both [4, 256]
    """

    def __init__(
        self,
        modalities: Sequence[str],
        dims: Mapping[str, int],
        category_dim: int,
        head: str = "paper",
        d: int = 256,
        dropout: float = 0.1,
        attribute_pool: str = "mean",
        normalize_modalities: bool = False,
        learn_tau: bool = False,
        tau: float = 1.0,
        bn_hidden: int | None = None,
    ) -> None:
        super().__init__()
        if attribute_pool not in ATTRIBUTE_POOLS:
            raise ValueError(f"unknown attribute_pool {attribute_pool!r}; choose one of {list(ATTRIBUTE_POOLS)}")
        if isinstance(modalities, str):
            modalities = (modalities,)  # a bare string would otherwise iterate by character
        unknown = [m for m in modalities if m not in PRODUCT_ORDER]
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; choose from {list(PRODUCT_ORDER)}")
        if not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be non-empty and distinct, got {list(modalities)}")
        missing = [m for m in modalities if m not in dims]
        if missing:
            raise KeyError(f"no feature size in `dims` for modalities {missing}; got {sorted(dims)}")
        self.modalities: tuple[str, ...] = tuple(m for m in PRODUCT_ORDER if m in modalities)
        self.dims: dict[str, int] = {m: int(dims[m]) for m in self.modalities}
        self.product_dim = sum(self.dims.values())
        self.category_dim = int(category_dim)
        self.head_kind, self.d, self.dropout = head, int(d), float(dropout)
        self.bn_hidden = bn_hidden
        self.category_head = build_head(head, self.category_dim, self.d, dropout, bn_hidden)  # g_c
        self.product_head = build_head(head, self.product_dim, self.d, dropout, bn_hidden)  # g_p
        self.normalize_modalities = bool(normalize_modalities)
        # registered after the heads: it draws no random numbers, so the heads' init is unchanged
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / tau))) if learn_tau else None
        self.attribute_pool = attribute_pool
        if attribute_pool == "attention" and "attributes" in self.modalities:
            self.attribute_attention = AttentionPool(self.dims["attributes"])

    def set_attribute_table(self, values: Tensor) -> None:
        """Per-attribute embeddings [U, d_a] that attention pooling looks indices up in."""
        if values.shape[-1] != self.dims.get("attributes"):
            raise ValueError(f"attribute table has size {values.shape[-1]}, expected {self.dims.get('attributes')}")
        self.attribute_attention.set_table(values)

    @property
    def _pools(self) -> bool:
        return hasattr(self, "attribute_attention")

    @classmethod
    def from_name(
        cls, name: str, dims: Mapping[str, int], category_dim: int, **kwargs: Any
    ) -> CtIModel:
        """Build CLIP-I, CLIP-IA or CLIP-ITA (see :data:`MODALITIES`); ``kwargs`` go to the init."""
        if name not in MODALITIES:
            raise KeyError(f"unknown model {name!r}; choose one of {list(MODALITIES)}")
        return cls(MODALITIES[name], dims, category_dim, **kwargs)

    @property
    def name(self) -> str:
        """The paper's name for this modality set, or ``"custom"`` (e.g. image + title)."""
        for name, mods in MODALITIES.items():
            if mods == self.modalities:
                return name
        return "custom"

    def encode_category(self, h_c: Tensor) -> Tensor:
        """c = g_c(h_c): [B, category_dim] -> [B, d] (not normalised)."""
        if h_c.shape[-1] != self.category_dim:
            raise ValueError(f"category features have size {h_c.shape[-1]}, expected {self.category_dim}")
        return self.category_head(h_c.to(self._dtype))

    def encode_product(self, feats: Mapping[str, Tensor]) -> Tensor:
        """p = g_p(concat(h_i, h_t, h_a)) over this model's modalities: -> [B, d] (not normalised).

        Args:
            feats: Modality name -> features [B, dims[name]]; extra modalities are ignored.

        Raises:
            KeyError: A modality this model needs is missing from ``feats``.
        """
        parts, dtype = [], self._dtype
        for m in self.modalities:
            if m not in feats:
                raise KeyError(
                    f"missing product modality {m!r}: {self.name} needs {list(self.modalities)}, "
                    f"got {sorted(feats)}"
                )
            x = feats[m]
            if m == "attributes" and self._pools:
                x = self.attribute_attention(x)  # [B, A] indices -> pooled [B, d_a]
            if x.shape[-1] != self.dims[m]:
                raise ValueError(f"{m!r} features have size {x.shape[-1]}, expected {self.dims[m]}")
            x = x.to(dtype)  # cached features may be float16
            parts.append(F.normalize(x, dim=-1) if self.normalize_modalities else x)
        # one modality (CLIP-I): the features themselves, not a copy by a one-tensor cat (same values)
        return self.product_head(parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1))

    def forward(self, category_feats: Tensor, product_feats: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Return ``(c, p)`` for aligned batches of category and product features."""
        return self.encode_category(category_feats), self.encode_product(product_feats)

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.category_head.parameters()).dtype

    @property
    def tau(self) -> float | None:
        """The learnt temperature, ``1 / exp(logit_scale)`` (None unless ``learn_tau``)."""
        return None if self.logit_scale is None else float(torch.exp(-self.logit_scale.detach()).float())

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for result records: modalities, sizes, head and parameter counts."""
        return {
            "name": self.name,
            "modalities": list(self.modalities),
            "input_dims": dict(self.dims),
            "product_input_dim": self.product_dim,
            "category_input_dim": self.category_dim,
            "head": self.head_kind,
            "dim": self.d,
            "dropout": self.dropout,
            **({"bn_hidden": self.category_head.net[0].out_features} if self.head_kind == "batchnorm" else {}),
            "attribute_pool": self.attribute_pool if "attributes" in self.modalities else None,
            "normalize_modalities": self.normalize_modalities,
            **({"learnt_tau": self.tau} if self.logit_scale is not None else {}),
            "params": sum(p.numel() for p in self.parameters()),
            "params_category_head": sum(p.numel() for p in self.category_head.parameters()),
            "params_product_head": sum(p.numel() for p in self.product_head.parameters()),
        }
