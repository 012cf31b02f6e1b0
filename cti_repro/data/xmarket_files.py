"""Where the importer's metadata files come from: a local folder or downloads, read line by line."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from cti_repro.data.download import DownloadError, download_file
from cti_repro.data.import_log import ImportLog

DEFAULT_MAX_METADATA_BYTES = 4 << 30  # per metadata file; the largest XMarket US file is far smaller


def iter_lines(path: Path, log: ImportLog, counts: Counter) -> Iterator[tuple[int, str]]:
    """Decoded lines of a gzip file; a corrupt/truncated file ends early with a logged error."""
    lineno = 0
    if path.stat().st_size == 0:  # gzip reads an empty file as zero lines, without an error
        counts["file_errors"] += 1
        log.write(f"{path}:1", "file_error", "empty file (0 bytes)")
        return
    try:
        with gzip.open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                yield lineno, raw.decode("utf-8", errors="replace")
    except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError
        counts["file_errors"] += 1
        log.write(f"{path}:{lineno + 1}", "file_error",
                  f"{type(exc).__name__}: {exc}; kept the {lineno} line(s) before it")


def local_files(root: Path, market: str, categories: list[str] | None) -> list[tuple[str, Path]]:
    """``(category, path)`` of every ``metadata_{market}_*.json.gz`` under ``root``."""
    prefix, suffix = f"metadata_{market}_", ".json.gz"
    found = []
    for p in sorted(root.rglob(f"{prefix}*{suffix}")):
        cat = p.name[len(prefix):-len(suffix)]
        if p.is_file() and (categories is None or cat in categories):
            found.append((cat, p))
    return found


def remote_files(
    base: str, market: str, categories: list[str], raw: Path, log: ImportLog, counts: Counter,
    retries: int, timeout: float, backoff: float, max_bytes: int | None = DEFAULT_MAX_METADATA_BYTES,
    deadline: float | None = None,
) -> list[tuple[str, Path]]:
    """Download each category's metadata file into ``raw`` (resumable); failures are logged."""
    found = []
    for cat in categories:
        name = f"metadata_{market}_{cat}.json.gz"
        url = f"{base.rstrip('/')}/{market}/{cat}/{name}"
        try:
            status = download_file(url, raw / name, retries=retries, timeout=timeout, backoff=backoff,
                                   max_bytes=max_bytes, deadline=deadline)
        except DownloadError as exc:
            counts["files_failed"] += 1
            log.write(url, "download_failed", str(exc))
            continue
        counts[f"files_{status}"] += 1
        found.append((cat, raw / name))
    return found


__all__ = ["DEFAULT_MAX_METADATA_BYTES", "iter_lines", "local_files", "remote_files"]
