"""Text-image pairs of the second study (Rubio et al. 2017): one text and one image per product.

A product's text joins the configured fields (``xmodal.text_fields``: its title and/or its
attribute strings, in that order) with ``". "``. The split is the CtI study's product-level split
(:func:`cti_repro.data.pairs.split_products` with ``cfg.split`` over the *whole* catalogue), so a
product sits in the same split in both studies; products without an image, with an unreadable
image or without text are then removed from their split and counted, never fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cti_repro.config import SplitConfig
from cti_repro.data.catalogue import Catalogue
from cti_repro.data.pairs import SPLITS, split_products

TEXT_FIELDS: tuple[str, ...] = ("title", "attributes")


def product_text(title: str, attributes: Sequence[str], fields: Sequence[str] = TEXT_FIELDS) -> str:
    """The product's text: the non-empty ``fields`` joined by ``". "`` (attributes one by one)."""
    unknown = set(fields) - set(TEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown text field(s) {sorted(unknown)}; expected some of {TEXT_FIELDS}")
    parts: list[str] = []
    for f in fields:
        vals = [title] if f == "title" else list(attributes)
        parts += [v.strip() for v in vals if v and v.strip()]
    return ". ".join(parts)


@dataclass
class XModalData:
    """The text <-> image task on one catalogue.

    Attributes:
        texts: one text per catalogue product ("" when it has none).
        split: catalogue indices per split, products with both an image and a text only.
        roots: root category of every catalogue product.
        leaves: leaf category of every catalogue product.
        excluded: per reason (``no_image``, ``unreadable_image``, ``no_text``) the number of
            products left out (a product counts once, under its first reason in that order).
        fields: the text fields used.
    """

    texts: list[str]
    split: dict[str, np.ndarray]
    roots: np.ndarray
    leaves: np.ndarray
    excluded: dict[str, int] = field(default_factory=dict)
    fields: tuple[str, ...] = TEXT_FIELDS

    @property
    def test(self) -> np.ndarray:
        """The test products (queries and candidates in both directions)."""
        return self.split["test"]

    def summary(self) -> dict[str, int]:
        return {**{f"{s}_products": int(len(self.split[s])) for s in SPLITS},
                **{f"excluded_{k}": int(v) for k, v in self.excluded.items()},
                "root_categories": int(len(set(self.roots.tolist())))}


def build_xmodal(
    catalogue: Catalogue, split: SplitConfig | None = None, fields: Sequence[str] = TEXT_FIELDS,
    image_ok: np.ndarray | None = None,
) -> XModalData:
    """Texts, the shared product-level split and the exclusion counts.

    Args:
        catalogue: the products.
        split: the config's ``split`` section (default 80/10/10, seed 0).
        fields: text fields (``xmodal.text_fields``).
        image_ok: optional bool per product: False where the image could not be decoded (a
            zero row in the cached image features); products without an image file are found here.

    Returns:
        The :class:`XModalData`.
    """
    split = split or SplitConfig()
    n = len(catalogue)
    texts = [product_text(t, a, fields) for t, a in zip(catalogue.titles, catalogue.attributes)]
    has_file = np.array([(p := catalogue.image_path(i)) is not None and p.is_file() for i in range(n)], bool)
    readable = np.ones(n, bool) if image_ok is None else np.asarray(image_ok, bool)
    if readable.shape != (n,):
        raise ValueError(f"image_ok must have one entry per product ({n}), got shape {readable.shape}")
    has_text = np.array([bool(t) for t in texts], bool)
    reasons = {"no_image": ~has_file, "unreadable_image": has_file & ~readable,
               "no_text": has_file & readable & ~has_text}
    keep = has_file & readable & has_text
    parts = split_products(n, split.seed, split.fractions)
    paths = catalogue.paths
    return XModalData(
        texts=texts, split={s: idx[keep[idx]] for s, idx in parts.items()},
        roots=np.asarray([p[0] if p else "" for p in paths], dtype=object),
        leaves=np.asarray([p[-1] if p else "" for p in paths], dtype=object),
        excluded={k: int(v.sum()) for k, v in reasons.items()}, fields=tuple(fields),
    )


__all__ = ["TEXT_FIELDS", "product_text", "XModalData", "build_xmodal"]
