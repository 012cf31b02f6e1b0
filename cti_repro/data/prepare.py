"""The profile's catalogue, built on first use: generated (synthetic), imported (XMarket) or given (dir)."""

from __future__ import annotations

import sys
from pathlib import Path

from cti_repro.config import StudyConfig
from cti_repro.data.catalogue import Catalogue


def prepare_catalogue(cfg: StudyConfig) -> Catalogue:
    """Load the profile's catalogue, building it first if it is missing (:func:`_prepare`).

    With ``data.category_key: path`` the categories are keyed by their full path
    (:meth:`Catalogue.keyed_by_path`); on disk the catalogue stays keyed by name.
    """
    catalogue = _prepare(cfg)
    return catalogue.keyed_by_path() if cfg.data.category_key == "path" else catalogue


def _prepare(cfg: StudyConfig) -> Catalogue:
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
        ImportRefusedError: the interrupted import was started with another source, market,
            categories or filters than the config's (:func:`check_resume`). A complete catalogue
            that differs is used with a warning (:func:`import_differences`).
    """
    directory = cfg.data_dir
    if (directory / "catalogue.parquet").is_file():
        catalogue = Catalogue.load(directory)
        if cfg.data.source == "synthetic":
            if synthetic_is_current(cfg, catalogue, directory):
                return catalogue
            return _generate(cfg, directory)  # a generated catalogue of other parameters: regenerate it
        # An XMarket import interrupted during the image phase is marked incomplete: resume it.
        if not (cfg.data.source == "xmarket" and catalogue.meta.get("complete") is False):
            if cfg.data.source == "xmarket" and "market" in catalogue.meta:
                _warn_differences(cfg, catalogue.meta, directory)
            return catalogue
        check_resume(cfg, catalogue.meta, directory)
    if cfg.data.source == "synthetic":
        return _generate(cfg, directory)
    if cfg.data.source == "xmarket":
        from cti_repro.data.xmarket import import_xmarket

        xm = cfg.data.xmarket
        import_xmarket(xm.source, xm.market, directory, categories=xm.categories or None, workers=xm.workers,
                       max_image_bytes=xm.max_image_bytes, max_metadata_bytes=xm.max_metadata_bytes,
                       image_deadline=xm.image_deadline_s, metadata_deadline=xm.metadata_deadline_s,
                       min_attributes=xm.min_attributes, min_depth=xm.min_depth)
        return Catalogue.load(directory)
    raise FileNotFoundError(f"{directory}: no catalogue.parquet (data.source is 'dir')")


def _generate(cfg: StudyConfig, directory: Path) -> Catalogue:
    from cti_repro.data.synthetic import generate_synthetic

    return generate_synthetic(directory, products=cfg.data.synthetic.products, seed=cfg.data.synthetic.seed)


def synthetic_is_current(cfg: StudyConfig, catalogue: Catalogue, directory: Path) -> bool:
    """Whether the catalogue in ``directory`` is the one ``data.synthetic`` (products, seed) asks for.

    A row must never run on one catalogue while its record states another size. A catalogue this
    package generated records its parameters: if they differ it is regenerated (False, with a note;
    the generator is byte-identical per parameters, so nothing is lost). A catalogue without them
    (written by hand or elsewhere) is used only if its size matches; otherwise the refusal names the
    command that generates the asked one.

    Raises:
        CatalogueError: ``directory`` holds a catalogue that was not generated here and whose size
            differs from ``data.synthetic.products``.
    """
    from cti_repro.data.catalogue import CatalogueError
    from cti_repro.data.synthetic import GENERATOR

    want = {"products": cfg.data.synthetic.products, "seed": cfg.data.synthetic.seed}
    meta = catalogue.meta or {}
    if meta.get("generator") == GENERATOR:
        have = {k: meta.get(k) for k in want}
        if have == want:
            return True
        print(f"note: {directory}: regenerating the synthetic catalogue for data.synthetic "
              f"products={want['products']} seed={want['seed']} (it was generated with products={have['products']} "
              f"seed={have['seed']})", file=sys.stderr)
        return False
    if len(catalogue) == want["products"]:
        return True
    raise CatalogueError(
        f"{directory}: holds a catalogue of {len(catalogue)} products that this package did not generate "
        f"(catalogue.json records no synthetic parameters), but data.synthetic.products is {want['products']}; "
        f"generate the asked one with `cti-repro data synthetic --out {directory} --products {want['products']} "
        f"--seed {want['seed']}` (it replaces the folder's catalogue) or point data.dir elsewhere")


_WARNED: set[str] = set()  # once per catalogue and process: prepare_catalogue runs once per row


def _warn_differences(cfg: StudyConfig, meta: dict, directory: Path) -> None:
    """Warn (once) that a complete XMarket catalogue is not what ``data.xmarket`` asks for."""
    diffs = import_differences(cfg, meta)
    key = f"{directory}:{diffs}"
    if diffs and key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: {directory / 'catalogue.json'}: this catalogue was imported with other settings "
              f"than data.xmarket ({'; '.join(diffs)}; recorded vs config); it is used as it is "
              "(remove the folder to import it again)", file=sys.stderr)


def _same_source(a: str, b: str) -> bool:
    """Equal URLs (up to a trailing slash) or the same local folder (however it is spelt)."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def check_resume(cfg: StudyConfig, meta: dict, directory: Path) -> None:
    """Refuse to resume an interrupted XMarket import with another source, market, categories or filters.

    The resumed import would otherwise quietly mix two imports: the metadata-only catalogue
    (and its downloaded images) of the first, the file list of the second.

    Args:
        cfg: the study config (``data.xmarket``).
        meta: ``catalogue.json`` of the interrupted import.
        directory: the catalogue folder (for the message).

    Raises:
        ImportRefusedError: a field differs; the message names both values and the two ways out.
    """
    from cti_repro.data.import_log import ImportRefusedError

    diffs = import_differences(cfg, meta)
    if diffs:
        raise ImportRefusedError(
            f"{directory / 'catalogue.json'}: the interrupted XMarket import there was started with "
            f"other settings than data.xmarket ({'; '.join(diffs)}; recorded vs config); set "
            "data.xmarket back to the recorded values to resume it, or remove the folder to start "
            "a new import")


def import_differences(cfg: StudyConfig, meta: dict) -> list[str]:
    """``data.xmarket`` fields that differ from what an import recorded in ``catalogue.json``.

    Returns:
        One ``"field recorded vs config"`` string per differing field (source, market,
        categories, filters); empty if the catalogue is what the config asks for.
    """
    xm = cfg.data.xmarket
    wanted = sorted(xm.categories or [])
    if "requested_categories" in meta:
        recorded = meta["requested_categories"]
    else:  # written before the field existed: compare with the categories it found
        recorded = sorted(meta.get("categories") or []) if wanted else []
    diffs = []
    if not _same_source(str(meta.get("source", "")), xm.source):
        diffs.append(f"source {meta.get('source')!r} vs {xm.source!r}")
    if meta.get("market") != xm.market:
        diffs.append(f"market {meta.get('market')!r} vs {xm.market!r}")
    if recorded != wanted:
        diffs.append(f"categories {recorded or 'all'} vs {wanted or 'all'}")
    filters = {"min_attributes": xm.min_attributes, "min_depth": xm.min_depth}
    # absent: written before the filters existed, when the importer applied the defaults
    recorded_filters = meta.get("filters") or {"min_attributes": 1, "min_depth": 2}
    if recorded_filters != filters:
        diffs.append(f"filters {recorded_filters} vs {filters}")
    return diffs


__all__ = ["check_resume", "import_differences", "prepare_catalogue", "synthetic_is_current"]
