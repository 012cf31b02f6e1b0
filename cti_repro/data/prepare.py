"""The profile's catalogue, built on first use: generated (synthetic), imported (XMarket) or given (dir)."""

from __future__ import annotations

from cti_repro.config import StudyConfig
from cti_repro.data.catalogue import Catalogue


def prepare_catalogue(cfg: StudyConfig) -> Catalogue:
    """Load the profile's catalogue, building it first if it is missing.

    Args:
        cfg: the study config; ``cfg.data`` says the source and the folder.

    Returns:
        The loaded :class:`~cti_repro.data.catalogue.Catalogue` (its fingerprint is computed once
        and kept on the object).

    Synthetic catalogues are generated; XMarket is imported from ``data.xmarket.source`` (needs
    internet for the URL form) and an import interrupted in its image phase is resumed; ``dir``
    catalogues must already exist.

    Raises:
        FileNotFoundError: ``data.source`` is ``dir`` and the folder holds no catalogue.
    """
    directory = cfg.data_dir
    if (directory / "catalogue.parquet").is_file():
        catalogue = Catalogue.load(directory)
        # An XMarket import interrupted during the image phase is marked incomplete: resume it.
        if not (cfg.data.source == "xmarket" and catalogue.meta.get("complete") is False):
            return catalogue
    if cfg.data.source == "synthetic":
        from cti_repro.data.synthetic import generate_synthetic

        return generate_synthetic(directory, products=cfg.data.synthetic.products, seed=cfg.data.synthetic.seed)
    if cfg.data.source == "xmarket":
        from cti_repro.data.xmarket import import_xmarket

        xm = cfg.data.xmarket
        import_xmarket(xm.source, xm.market, directory, categories=xm.categories or None, workers=xm.workers,
                       max_image_bytes=xm.max_image_bytes, max_metadata_bytes=xm.max_metadata_bytes,
                       image_deadline=xm.image_deadline_s, metadata_deadline=xm.metadata_deadline_s)
        return Catalogue.load(directory)
    raise FileNotFoundError(f"{directory}: no catalogue.parquet (data.source is 'dir')")


__all__ = ["prepare_catalogue"]
