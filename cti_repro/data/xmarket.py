"""Import XMarket product metadata (Bonab et al., CIKM 2021) into the catalogue format.

Input: the gzipped ``metadata_{market}_{Category}.json.gz`` files (``book/real_data.md``),
either from a local directory or downloaded from the XMarket site. One product per line; a line
is a JSON object, a Python-literal dict (the official snippet uses ``eval``) or a list of such
dicts. We parse with ``json.loads`` and fall back to ``ast.literal_eval``, which only accepts
literals, so a hostile line is reported, never executed.

Mapping (``book/deviations.md`` rows 1-3, 20): ``asin`` -> product_id (first occurrence wins),
``title``, ``categories`` -> category_path (root first), ``features`` -> attributes (fallback
``productDetails`` as "key: value"), the largest image of ``imgUrl`` -> image_url. A product is
kept with a title, an image URL, >= 1 attribute and a path of depth >= 2; with image download,
also only if its image downloads and decodes.
Every problem (line, file, image) goes to ``OUT/import_log.txt`` as ``where: kind: detail``; the
previous runs' logs are kept as ``import_log.txt.1`` (newest) .. ``.3``.

A re-import never replaces a complete catalogue with an empty or smaller one (an unreachable
source or a wrong market would otherwise wipe a good catalogue) unless ``force`` is given.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cti_repro.data.catalogue import IMAGES_DIR, Catalogue, Product
from cti_repro.data.download import DEFAULT_MAX_BYTES, DownloadError, download_file  # noqa: F401  (re-exported for callers of the importer)
from cti_repro.data.import_log import ImportLog, ImportRefusedError, complete_size, refuse_smaller  # noqa: F401  (re-exported)
from cti_repro.data.xmarket_files import DEFAULT_MAX_METADATA_BYTES, iter_lines, local_files, remote_files
from cti_repro.study import XMARKET_URL

XMARKET_BASE_URL = XMARKET_URL  # kept as the importer's public name
XMARKET_CATEGORIES: tuple[str, ...] = (
    "Arts_Crafts_and_Sewing", "Automotive", "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories",
    "Digital_Music", "Electronics", "Grocery_and_Gourmet_Food", "Home_and_Kitchen",
    "Industrial_and_Scientific", "Kindle_Store", "Movies_and_TV", "Musical_Instruments",
    "Office_Products", "Sports_and_Outdoors", "Toys_and_Games",
)
LOG_NAME = "import_log.txt"
RAW_DIR = "raw"
DROP_REASONS = ("no_id", "no_title", "no_image_url", "no_attributes", "shallow_path", "image_failed")
_IMAGE_EXTS = {"jpg", "jpeg", "png", "gif", "webp", "bmp"}


# ---- parsing ---------------------------------------------------------------------------------
def parse_line(text: str) -> list[dict[str, Any]]:
    """Parse one metadata line into product records, without ever executing it.

    Args:
        text: a stripped, non-blank line.

    Returns:
        The record dicts (a JSON/Python-literal dict, or a list of dicts).

    Raises:
        ValueError: not JSON, not a Python literal, or not a dict / non-empty list of dicts.
    """
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        try:
            obj = ast.literal_eval(text)  # literals only: calls, names, attributes are rejected
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise ValueError(f"neither JSON nor a Python literal ({type(exc).__name__})") from None
    if isinstance(obj, dict):
        return [obj]
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        return obj
    raise ValueError(f"not a dict or a list of dicts (a {type(obj).__name__})")


def _str_list(value: Any) -> list[str]:
    """Non-empty stripped strings of a list (a lone string counts as a one-item list)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [s.strip() for s in value if isinstance(s, str) and s.strip()]


def extract_attributes(rec: dict[str, Any]) -> list[str]:
    """``features`` bullets; if none, ``productDetails`` as "key: value" (string values only)."""
    feats = _str_list(rec.get("features"))
    if feats:
        return feats
    details = rec.get("productDetails")
    if not isinstance(details, dict):
        return []
    return [
        f"{str(k).strip()}: {v.strip()}"
        for k, v in details.items()
        if isinstance(v, str) and v.strip() and str(k).strip()
    ]


def pick_image_url(img: Any) -> str:
    """The largest image (max h*w, ties -> first) of an ``imgUrl`` value, or "" if unusable.

    Args:
        img: a JSON string mapping URL -> [h, w], such a dict, or anything else (-> "").
    """
    if isinstance(img, str):
        try:
            img = json.loads(img)
        except (ValueError, RecursionError):
            try:
                img = ast.literal_eval(img)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return ""
    if isinstance(img, list):  # a bare list of URLs: no sizes, take the first
        img = {u: None for u in img if isinstance(u, str)}
    if not isinstance(img, dict):
        return ""
    best, best_area = "", -2.0
    for url, size in img.items():
        if not isinstance(url, str) or not url.strip():
            continue
        area = -1.0  # a URL with an unreadable size still beats none, loses to any sized one
        if isinstance(size, (list, tuple)) and len(size) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in size):
            area = float(size[0]) * float(size[1])
        if area > best_area:  # strict: ties keep the first
            best, best_area = url.strip(), area
    return best


def _asin_key(asin: Any) -> str:
    """The product id of an ``asin`` value: a string or an integer (JSON ``true`` is neither)."""
    return str(asin).strip() if isinstance(asin, (str, int)) and not isinstance(asin, bool) else ""


def record_to_product(
    rec: dict[str, Any], market: str, min_attributes: int = 1, min_depth: int = 2,
) -> tuple[Product | None, str]:
    """Map one record; returns ``(product, "")`` or ``(None, drop_reason)``.

    Fewer than ``min_attributes`` attributes is ``no_attributes``, a path of fewer than
    ``min_depth`` levels ``shallow_path`` (the defaults keep every usable product).
    """
    pid = _asin_key(rec.get("asin"))
    if not pid:
        return None, "no_id"
    title = rec.get("title").strip() if isinstance(rec.get("title"), str) else ""
    if not title:
        return None, "no_title"
    url = pick_image_url(rec.get("imgUrl"))
    if not url:
        return None, "no_image_url"
    attrs = extract_attributes(rec)
    if len(attrs) < max(1, min_attributes):
        return None, "no_attributes"
    path = _str_list(rec.get("categories"))
    if len(path) < max(2, min_depth):
        return None, "shallow_path"
    return Product(pid, title, tuple(attrs), tuple(path), "", url, f"xmarket:{market}"), ""


# ---- images ----------------------------------------------------------------------------------
def image_filename(product_id: str, url: str) -> str:
    """``{safe id}.{ext}``: extension from the URL (default jpg); id made filesystem-safe.

    An id that needed changes gets a short hash so two ids never share a file.
    """
    ext = Path(urlparse(url).path).suffix.lower().lstrip(".")
    ext = ext if ext in _IMAGE_EXTS else "jpg"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", product_id).lstrip(".")[:100]
    if safe != product_id:
        safe = f"{safe}_{hashlib.sha1(product_id.encode('utf-8')).hexdigest()[:8]}"
    return f"{safe}.{ext}"


def verify_image(path: Path) -> None:
    """Raise unless PIL can verify and fully decode ``path``."""
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:  # verify() leaves the image unusable; decode for real
        im.load()


def _fetch_images(
    products: list[Product], out: Path, log: ImportLog, workers: int, retries: int,
    timeout: float, backoff: float, max_bytes: int | None = DEFAULT_MAX_BYTES, deadline: float | None = 120.0,
) -> tuple[list[Product], Counter]:
    """Download and verify every product's image; returns the products whose image is good."""
    from tqdm.auto import tqdm

    images = out / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter(downloaded=0, present=0, failed=0)

    def one(p: Product) -> tuple[str, str]:
        rel = f"{IMAGES_DIR}/{image_filename(p.product_id, p.image_url)}"
        dest = out / rel
        if dest.is_file():
            try:
                verify_image(dest)
                return "present", rel
            except Exception as exc:  # a broken leftover: fetch again
                log.write(str(dest), "image_refetch", f"{type(exc).__name__}: {exc}")
                dest.unlink(missing_ok=True)
        return download_file(p.image_url, dest, retries=retries, timeout=timeout, backoff=backoff,
                             verify=verify_image, max_bytes=max_bytes, deadline=deadline), rel

    kept: dict[int, Product] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = {pool.submit(one, p): i for i, p in enumerate(products)}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="images", unit="img"):
            i = futures[fut]
            try:
                status, rel = fut.result()
            except Exception as exc:  # DownloadError, disk errors, ...: drop this product only
                counts["failed"] += 1
                log.write(products[i].product_id, "image_failed", str(exc))
                continue
            counts[status] += 1
            kept[i] = replace(products[i], image=rel)
    finally:
        # On Ctrl-C do not wait for the queue; finished images stay on disk for the rerun.
        pool.shutdown(wait=True, cancel_futures=True)
    return [kept[i] for i in sorted(kept)], counts


# ---- entry point -----------------------------------------------------------------------------
def import_xmarket(
    source: str,
    market: str,
    out: Path,
    categories: list[str] | None = None,
    skip_images: bool = False,
    workers: int = 8,
    retries: int = 3,
    timeout: float = 30.0,
    *,
    backoff: float = 1.0,
    force: bool = False,
    max_image_bytes: int | None = DEFAULT_MAX_BYTES,
    max_metadata_bytes: int | None = DEFAULT_MAX_METADATA_BYTES,
    image_deadline: float | None = 120.0,
    metadata_deadline: float | None = None,
    min_attributes: int = 1,
    min_depth: int = 2,
) -> dict[str, Any]:
    """Build a catalogue in ``out`` from XMarket metadata files.

    Args:
        source: a directory searched recursively for ``metadata_{market}_{Category}.json.gz``, or
            an http(s) base URL (e.g. :data:`XMARKET_BASE_URL`) to download them from into
            ``out/raw/``.
        market: XMarket market code, e.g. ``"us"``.
        out: catalogue directory (``catalogue.parquet``, ``catalogue.json``, ``images/``, log).
        categories: XMarket file categories to read (default: all found / all 16 for a URL).
        skip_images: keep image URLs but download nothing (``image`` stays "").
        workers: parallel image downloads.
        retries: extra attempts per download after the first.
        timeout: socket timeout per request in seconds.
        backoff: first wait between attempts in seconds (doubles each retry).
        force: replace a complete catalogue in ``out`` even with an empty or smaller one.
        max_image_bytes, max_metadata_bytes: largest accepted download (None: no cap).
        image_deadline, metadata_deadline: seconds for one whole download (None: no limit).
        min_attributes, min_depth: subset filters (:func:`record_to_product`), kept in the meta.

    Returns:
        Summary: ``files``, ``lines``, ``records``, ``malformed``, ``blank``, ``duplicates``,
        ``file_errors``, ``files_failed`` / ``files_downloaded`` / ``files_present`` (URL
        source), ``kept``, ``dropped`` (per reason), ``images``
        (``downloaded``, ``present``, ``failed``), ``log``, ``out``, ``source``, ``market``,
        ``categories``.

    Raises:
        FileNotFoundError: ``source`` is neither a directory nor a URL, or holds no matching file.
        ImportRefusedError: the import kept fewer products than the complete catalogue already in
            ``out`` (which is left as it was) and ``force`` is false.
    """
    out = Path(out)
    is_url = urlparse(source).scheme in ("http", "https")
    if not is_url and not Path(source).is_dir():
        raise FileNotFoundError(f"{source}: not a directory or an http(s) URL")
    cats = list(categories) if categories else None
    counts: Counter = Counter()
    dropped: Counter = Counter({r: 0 for r in DROP_REASONS})
    img_counts: Counter = Counter(downloaded=0, present=0, failed=0)
    previous = complete_size(out)
    log = ImportLog(out / LOG_NAME)
    try:
        if is_url:
            files = remote_files(source, market, cats or list(XMARKET_CATEGORIES), out / RAW_DIR,
                                  log, counts, retries, timeout, backoff, max_metadata_bytes, metadata_deadline)
        else:
            files = local_files(Path(source), market, cats)
            if not files:
                raise FileNotFoundError(
                    f"{source}: no metadata_{market}_*.json.gz" + (f" for {cats}" if cats else ""))
        seen: set[str] = set()
        products: list[Product] = []
        for _, path in files:
            counts["files"] += 1
            for lineno, line in iter_lines(path, log, counts):
                counts["lines"] += 1
                text = line.strip()
                if not text:
                    counts["blank"] += 1
                    log.write(f"{path}:{lineno}", "blank", "empty line")
                    continue
                try:
                    records = parse_line(text)
                except ValueError as exc:
                    counts["malformed"] += 1
                    log.write(f"{path}:{lineno}", "malformed", f"{exc}: {text[:120]!r}")
                    continue
                for rec in records:
                    counts["records"] += 1
                    key = _asin_key(rec.get("asin"))
                    if key and key in seen:  # first occurrence wins, even if it is dropped later
                        counts["duplicates"] += 1
                        log.write(f"{path}:{lineno}", "duplicate", f"asin {key!r} seen before")
                        continue
                    seen.add(key)
                    cats_value = rec.get("categories")
                    if isinstance(cats_value, (list, tuple)) and any(not isinstance(c, str) for c in cats_value):
                        counts["path_elements_dropped"] += 1
                        log.write(f"{path}:{lineno}", "path_element_dropped",
                                  f"asin {key!r}: non-string element(s) of categories dropped: "
                                  f"{[c for c in cats_value if not isinstance(c, str)][:5]!r}"[:200])
                    product, reason = record_to_product(rec, market, min_attributes, min_depth)
                    if product is None:
                        dropped[reason] += 1
                    else:
                        products.append(product)
        meta = {"source": source, "market": market,
                "categories": cats or sorted({c for c, _ in files}), "skip_images": skip_images,
                # what was asked for ([] = all), so a resume can check it continues the same import
                "requested_categories": sorted(cats or []),
                "filters": {"min_attributes": min_attributes, "min_depth": min_depth}}
        refuse_smaller(out, previous, len(products), force, log, "metadata")
        if not skip_images and products:
            # Write the metadata-only catalogue first, so an interrupted download leaves a usable
            # (marked incomplete) catalogue; the rerun skips the images already on disk. A complete
            # catalogue already there stays until the new one is known to be no smaller.
            if previous is None or force:
                Catalogue.from_products(products, out, meta={**meta, "complete": False}).save(out)
            products, img_counts = _fetch_images(products, out, log, workers, retries, timeout, backoff,
                                                 max_image_bytes, image_deadline)
            dropped["image_failed"] = img_counts["failed"]
        summary: dict[str, Any] = {
            "files": counts["files"], "lines": counts["lines"], "records": counts["records"],
            "malformed": counts["malformed"], "blank": counts["blank"],
            "duplicates": counts["duplicates"], "file_errors": counts["file_errors"],
            "files_failed": counts["files_failed"], "files_downloaded": counts["files_downloaded"],
            "files_present": counts["files_present"], "kept": len(products),
            "dropped": dict(dropped), "images": dict(img_counts),
            "log": str(out / LOG_NAME), "out": str(out), "source": source, "market": market,
            "categories": meta["categories"], "path_elements_dropped": counts["path_elements_dropped"],
        }
        refuse_smaller(out, previous, len(products), force, log, "images")
        # root=out so the fingerprint stored in catalogue.json covers the image files' sizes.
        Catalogue.from_products(products, out, meta={**meta, "complete": True, "summary": summary}).save(out)
    finally:
        log.close()
    print(
        f"xmarket: {summary['files']} file(s), {summary['lines']} line(s), {summary['records']} "
        f"record(s); kept {summary['kept']}; dropped {sum(dropped.values())} {dict(dropped)}; "
        f"{summary['malformed']} malformed, {summary['blank']} blank, {summary['duplicates']} "
        f"duplicate(s); images {dict(img_counts)}; log: {summary['log']}",
        file=sys.stderr,
    )
    return summary
