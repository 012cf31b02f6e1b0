"""The one catalogue format every source is turned into.

On disk a catalogue is a directory::

    catalogue.parquet    one row per product (schema below)
    images/              product images, referenced by the ``image`` column (relative path)
    catalogue.json       optional provenance written by the importer (source, counts, seeds)

Columns (types are checked on load; a wrong one fails with a message naming the column):

=================  ==============  ===============================================================
column             type            meaning
=================  ==============  ===============================================================
``product_id``     str             unique id (XMarket ``asin``)
``title``          str             product title
``attributes``     list<str>       attribute strings (XMarket ``features`` bullets)
``category_path``  list<str>       category names, root (most general) first, leaf last
``image``          str             path relative to the catalogue directory, "" if none
``image_url``      str             where the image came from, "" for generated ones
``source``         str             "xmarket:us", "synthetic", ...
=================  ==============  ===============================================================

Categories are identified by their *name* (``book/deviations.md`` row 4): the query is the name.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cti_repro.io_utils import atomic_write_bytes, atomic_write_json

PARQUET_NAME = "catalogue.parquet"
META_NAME = "catalogue.json"
IMAGES_DIR = "images"
PATH_SEP = " > "  # joins a category's path when categories are keyed by path (data.category_key)

STR_COLUMNS = ("product_id", "title", "image", "image_url", "source")
LIST_COLUMNS = ("attributes", "category_path")
COLUMNS = ("product_id", "title", "attributes", "category_path", "image", "image_url", "source")


class CatalogueError(ValueError):
    """A catalogue file is missing, or a column is missing or has the wrong type."""


@dataclass(frozen=True)
class Product:
    """One product: the unit that is retrieved.

    Args:
        product_id: unique id.
        title: product title.
        attributes: attribute strings, e.g. ``("Material: steel", "Colour: red")``.
        category_path: category names from root to leaf.
        image: image path relative to the catalogue directory ("" if none).
        image_url: original image URL ("" for generated images).
        source: where the product came from.
    """

    product_id: str
    title: str
    attributes: tuple[str, ...] = ()
    category_path: tuple[str, ...] = ()
    image: str = ""
    image_url: str = ""
    source: str = ""

    def as_row(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "title": self.title,
            "attributes": list(self.attributes),
            "category_path": list(self.category_path),
            "image": self.image,
            "image_url": self.image_url,
            "source": self.source,
        }


@dataclass
class Catalogue:
    """An in-memory catalogue: a validated product table plus the directory its images live in.

    Args:
        frame: one row per product with :data:`COLUMNS`.
        root: directory that ``image`` paths are relative to (None for an unsaved catalogue).
        meta: provenance (source, generator arguments, import summary).

    Example:
        >>> cat = Catalogue.from_products([Product("p1", "Red mug", ("Colour: red",), ("Home", "Mugs"))])
        >>> cat.stats()["products"]
        1
    """

    frame: pd.DataFrame
    root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # (root, frame) the fingerprint was computed for, and the value: computed once per catalogue
    _fingerprint: tuple[Any, int, str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.frame = validate_frame(self.frame, where="catalogue")

    # ---- construction and persistence -------------------------------------------------------
    @classmethod
    def from_products(
        cls, products: Iterable[Product], root: str | Path | None = None, meta: dict | None = None
    ) -> Catalogue:
        rows = [p.as_row() for p in products]
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        return cls(frame, Path(root) if root else None, dict(meta or {}))

    @classmethod
    def load(cls, directory: str | Path) -> Catalogue:
        """Read ``directory/catalogue.parquet`` and validate it.

        Raises:
            CatalogueError: the file is missing or a column is missing / mistyped.
        """
        directory = Path(directory)
        path = directory / PARQUET_NAME
        if not path.is_file():
            raise CatalogueError(f"{path}: no catalogue here (expected {PARQUET_NAME})")
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise CatalogueError(f"{path}: cannot read parquet: {exc}") from exc
        meta_path = directory / META_NAME
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        frame = validate_frame(frame, where=str(path))
        return cls(frame, directory, meta)

    def save(self, directory: str | Path) -> Path:
        """Write the parquet (atomically) and the provenance JSON into ``directory``.

        The catalogue is re-rooted at ``directory``: its ``images/`` are expected there.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(self.frame[list(COLUMNS)], preserve_index=False)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(directory / PARQUET_NAME, sink.getvalue().to_pybytes())
        self.root = directory  # before the fingerprint, which includes image file sizes
        self._fingerprint = None  # images may have been written since it was computed
        atomic_write_json(directory / META_NAME, {**self.meta, "fingerprint": self.fingerprint()})
        return directory

    # ---- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    def __iter__(self) -> Iterator[Product]:
        for row in self.frame.itertuples(index=False):
            yield Product(
                row.product_id, row.title, tuple(row.attributes), tuple(row.category_path),
                row.image, row.image_url, row.source,
            )

    def __getitem__(self, i: int) -> Product:
        row = self.frame.iloc[i]
        return Product(
            row.product_id, row.title, tuple(row.attributes), tuple(row.category_path),
            row.image, row.image_url, row.source,
        )

    @property
    def product_ids(self) -> list[str]:
        return self.frame["product_id"].tolist()

    @property
    def titles(self) -> list[str]:
        return self.frame["title"].tolist()

    @property
    def paths(self) -> list[list[str]]:
        return self.frame["category_path"].tolist()

    @property
    def attributes(self) -> list[list[str]]:
        return self.frame["attributes"].tolist()

    def image_path(self, i: int) -> Path | None:
        """Absolute path of product ``i``'s image: a regular file inside ``<root>/images``, else None.

        None when the product has no image, the root is unset, the file is missing, or the path
        is refused (:meth:`refused_images`): the ``image`` column is catalogue data, and ``../x``,
        an absolute path or a symlink out of ``images/`` must not make another file the product's
        image, nor a named pipe or a device hang or feed the encoder.
        """
        return _checked_image(self.root, self.frame["image"].iat[i])[0]

    def refused_images(self) -> list[int]:
        """Rows whose ``image`` names something other than a regular file inside ``<root>/images``
        (outside the folder, absolute, a symlink out, a pipe, a device, a folder); counted as missing."""
        if self.root is None:
            return []
        return [i for i, rel in enumerate(self.frame["image"].tolist()) if _checked_image(self.root, rel)[1]]

    def subset(self, indices: Iterable[int]) -> Catalogue:
        """A new catalogue with the given rows (same root)."""
        frame = self.frame.iloc[list(indices)].reset_index(drop=True)
        return Catalogue(frame, self.root, dict(self.meta))

    def keyed_by_path(self) -> Catalogue:
        """The same products with each category named by its full path (``data.category_key: path``).

        ``("Home", "Kitchen", "Accessories")`` becomes ``("Home", "Home > Kitchen", "Home > Kitchen >
        Accessories")``: a name under two parents (homonyms such as "Accessories") becomes two
        categories, and the query text is the path. Pairs, features and stats need no change; the
        fingerprint changes with the labels, so caches and results keep the two apart. The by-name
        counts are kept in ``meta["by_name"]`` to show the option's effect.
        """
        frame = self.frame.copy()
        frame["category_path"] = [[PATH_SEP.join(p[:i + 1]) for i in range(len(p))] for p in self.paths]
        before = self.stats()
        by_name = {k: before[k] for k in ("unique_categories", "root_categories", "leaf_categories",
                                          "unique_category_paths", "homonym_names")}
        return Catalogue(frame, self.root, {**self.meta, "category_key": "path", "by_name": by_name})

    # ---- identity and statistics -------------------------------------------------------------
    def fingerprint(self) -> str:
        """Content hash of the table and the image files' sizes (the feature-cache key).

        Image bytes are not hashed (38k+ files); the relative path and size catch the usual
        changes (re-download, different resolution) at negligible cost. Computed once per
        catalogue object (and again after :meth:`save` or a change of ``root`` / ``frame``).
        """
        if self._fingerprint is not None and self._fingerprint[:2] == (self.root, id(self.frame)):
            return self._fingerprint[2]
        h = hashlib.sha256()
        for row in self.frame.itertuples(index=False):
            p = _checked_image(self.root, row.image)[0]
            size = p.stat().st_size if p is not None else -1
            rec = [row.product_id, row.title, list(row.attributes), list(row.category_path), row.image, size]
            h.update(json.dumps(rec, ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        self._fingerprint = (self.root, id(self.frame), h.hexdigest()[:16])
        return self._fingerprint[2]

    def stats(self) -> dict[str, Any]:
        """The paper's dataset statistics (section 4 "Dataset") for this catalogue.

        Returns:
            products, unique categories (by name), unique category paths and the names shared by
            more than one path (homonyms), levels (deepest path), root and leaf
            categories, category-product pairs (one per node of each path), path depth
            mean/min/max, attributes total/unique/mean/min/max per product, images missing.
        """
        paths = self.paths
        attrs = self.attributes
        depths = np.array([len(p) for p in paths], dtype=float) if paths else np.zeros(0)
        n_attr = np.array([len(a) for a in attrs], dtype=float) if attrs else np.zeros(0)
        prefixes = {tuple(p[:i + 1]) for p in paths for i in range(len(p))}  # a category by its path
        checked = [_checked_image(self.root, rel) for rel in self.frame["image"].tolist()]
        missing = sum(p is None for p, _ in checked)
        refused = sum(bad for _, bad in checked)

        def _agg(a: np.ndarray, fn) -> float:
            return float(fn(a)) if a.size else 0.0

        return {
            "products": len(self),
            "unique_categories": len({c for p in paths for c in p}),
            "unique_category_paths": len(prefixes),
            "homonym_names": int((pd.Series([q[-1] for q in prefixes]).value_counts() > 1).sum()) if prefixes else 0,
            "levels": int(_agg(depths, np.max)),
            "root_categories": len({p[0] for p in paths if p}),
            "leaf_categories": len({p[-1] for p in paths if p}),
            "category_product_pairs": int(depths.sum()),
            "depth_mean": round(_agg(depths, np.mean), 4),
            "depth_min": int(_agg(depths, np.min)),
            "depth_max": int(_agg(depths, np.max)),
            "attributes_total": int(n_attr.sum()),
            "attributes_unique": len({a for aa in attrs for a in aa}),
            "attributes_mean": round(_agg(n_attr, np.mean), 4),
            "attributes_min": int(_agg(n_attr, np.min)),
            "attributes_max": int(_agg(n_attr, np.max)),
            "images_missing": missing,
            **({"images_refused": refused} if refused else {}),  # part of images_missing; shown only when there are some
            **self._import_state(),
        }

    def _import_state(self) -> dict[str, Any]:
        """For an import interrupted before its end (``complete: false`` in ``catalogue.json``).

        Such a catalogue is the metadata-only one written before the image phase: its ``image``
        column is still empty, so ``images_missing`` counts every product. What was downloaded
        is only in ``images/``: count those files (finished ones, and ``.part`` prefixes a rerun
        resumes) so the user sees how far the import got.

        Returns:
            ``{}`` for a complete catalogue, else ``complete`` (False), ``images_on_disk`` and
            ``images_partial``.
        """
        if self.meta.get("complete") is not False:
            return {}
        done = partial = 0
        folder = self.root / IMAGES_DIR if self.root is not None else None
        if folder is not None and folder.is_dir():
            for p in folder.iterdir():
                if p.is_file():
                    partial += p.name.endswith(".part")
                    done += not p.name.endswith(".part")
        return {"complete": False, "images_on_disk": done, "images_partial": partial}


def _checked_image(root: Path | None, rel: str) -> tuple[Path | None, bool]:
    """``(path, refused)`` of one ``image`` value: the resolved path if it is a regular file inside
    ``root/images`` (symlinks inside the folder are followed), else None; ``refused`` is True when
    the value names something that is not allowed (outside the folder, absolute, not a regular
    file), False when it is empty or simply missing.

    Only ``stat`` is called, never ``open``: a named pipe is recognised without blocking.
    """
    if not rel or root is None:
        return None, False
    base = (root / IMAGES_DIR).resolve()
    if Path(rel).is_absolute():
        return None, True
    path = (root / rel).resolve()
    if not path.is_relative_to(base) or path == base:
        return None, True
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None, False
    except OSError:  # a loop of symlinks, a component that is a file, no permission
        return None, True
    return (path, False) if stat.S_ISREG(mode) else (None, True)


def incomplete_note(stats: dict[str, Any]) -> str:
    """One line on an interrupted import's :meth:`Catalogue.stats` (``complete`` false)."""
    return (f"catalogue is INCOMPLETE (the import stopped before its end): {stats['images_on_disk']} image(s) "
            f"on disk, {stats['images_partial']} partial, for {stats['products']} product(s); rerun the "
            "import (or `cti-repro reproduce`) to resume it")


def validate_frame(frame: pd.DataFrame, where: str = "catalogue") -> pd.DataFrame:
    """Check columns and element types; return a frame with normalised Python lists.

    Raises:
        CatalogueError: naming ``where``, the column and the first offending row.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise CatalogueError(f"{where}: missing column(s) {missing}; expected {list(COLUMNS)}")
    frame = frame.reset_index(drop=True).copy()
    for col in STR_COLUMNS:
        values = frame[col].tolist()
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise CatalogueError(
                    f"{where}: column '{col}' must hold str, row {i} holds {type(v).__name__} ({v!r})"
                )
        frame[col] = pd.Series(values, dtype=object)
    for col in LIST_COLUMNS:
        out = []
        for i, v in enumerate(frame[col].tolist()):
            if isinstance(v, np.ndarray):
                v = v.tolist()
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise CatalogueError(
                    f"{where}: column '{col}' must hold list<str>, row {i} holds {v!r}"
                )
            out.append(list(v))
        frame[col] = pd.Series(out, dtype=object)
    dup = frame["product_id"].duplicated()
    if dup.any():
        first = frame.loc[dup, "product_id"].iloc[0]
        raise CatalogueError(f"{where}: column 'product_id' has duplicates, e.g. {first!r}")
    return frame[list(COLUMNS)]
