"""Data layer: the catalogue format, its sources (XMarket, synthetic) and the evaluation settings."""

from cti_repro.data.catalogue import Catalogue, CatalogueError, Product

__all__ = ["Catalogue", "CatalogueError", "Product"]
