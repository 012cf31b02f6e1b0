"""The refusals a Table 1 row makes before it spends time: no readable images, no attributes.

Each raises a ``ValueError`` subclass (the command line prints it as one line, exit 2) naming the
catalogue folder and the config field or import flag that would fix it. Re-exported by
:mod:`cti_repro.run.row`, where callers import them from.
"""

from __future__ import annotations

import sys

from cti_repro.config import StudyConfig
from cti_repro.study import FEATURES_BY_MODEL, MODALITIES, MODELS


class UnreadableImagesError(ValueError):
    """Most product images cannot be read: an image-based row would rank zero vectors."""


def check_images(fs, products: int, cfg: StudyConfig, model: str) -> dict[str, int]:
    """Refuse an image-based row when too many images are unreadable; return the count for the record.

    Args:
        fs: the row's features (``fs.stats["images_unreadable"]`` when the image part is loaded).
        products: products in the catalogue.
        cfg: the study config (``encoders.image.max_unreadable``, a fraction).
        model: the row's model.

    Returns:
        ``{"images_unreadable": n}`` for image-based rows, else ``{}``.

    Raises:
        UnreadableImagesError: the unreadable share exceeds ``encoders.image.max_unreadable``.
    """
    if "image" not in FEATURES_BY_MODEL[model] or "images_unreadable" not in fs.stats:
        return {}
    bad = int(fs.stats["images_unreadable"])
    limit = cfg.encoders.image.max_unreadable
    if products and bad / products > limit:
        raise UnreadableImagesError(
            f"{cfg.data_dir}: {bad} of {products} product images are unreadable (more than "
            f"encoders.image.max_unreadable = {limit:.0%}); {model} would rank blank images. Import the "
            "catalogue with its images (not --skip-images) or raise encoders.image.max_unreadable")
    if bad:
        print(f"warning: {bad} of {products} product images are unreadable (zero features)", file=sys.stderr)
    return {"images_unreadable": bad}


class NoAttributesError(ValueError):
    """No product of the catalogue has an attribute: an attribute-based row would learn from zeros."""


def check_attributes(catalogue, cfg: StudyConfig, model: str) -> None:
    """Refuse a row whose model reads attributes (:data:`~cti_repro.study.MODALITIES`) when no product has one.

    The features stage gives such a catalogue the zero vector of eq. 5 for every product (and counts
    them), so the other rows still run; CLIP-IA / CLIP-ITA would then be CLIP-I / CLIP-IT under a
    name that claims attributes, and their numbers would be recorded as the attribute ablation.

    Raises:
        NoAttributesError: ``model`` uses attributes and the catalogue has none.
    """
    if "attributes" in MODALITIES.get(model, ()) and not any(catalogue.attributes):
        raise NoAttributesError(
            f"{cfg.data_dir}: no product of the {len(catalogue)} in the catalogue has an attribute; {model} "
            "needs them (column 'attributes'). Import a catalogue with attributes, or run the models "
            f"without them ({', '.join(m for m in MODELS if 'attributes' not in MODALITIES.get(m, ()))})")


__all__ = ["check_images", "UnreadableImagesError", "check_attributes", "NoAttributesError"]
