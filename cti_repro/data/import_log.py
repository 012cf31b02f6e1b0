"""The importer's problem log (rotated, never truncated) and the guard of a good catalogue."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from cti_repro.data.catalogue import Catalogue, CatalogueError

LOG_KEEP = 3  # previous import logs kept beside the current one


class ImportRefusedError(CatalogueError):
    """A re-import would replace a complete catalogue with an empty or smaller one."""


def rotate_log(path: Path, keep: int = LOG_KEEP) -> None:
    """Shift ``path`` to ``path.1`` (``.1`` to ``.2``, ...), keeping ``keep`` old logs."""
    for i in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{i - 1}") if i > 1 else path
        if older.is_file():
            os.replace(older, path.with_name(f"{path.name}.{i}"))


class ImportLog:
    """Line-oriented, thread-safe problem log (``file:line: kind: detail``), written as it goes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        rotate_log(path)  # the previous run's log is evidence too: never truncate it
        self._fh = open(path, "w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, where: str, kind: str, detail: str) -> None:
        with self._lock:
            self._fh.write(f"{where}: {kind}: {detail}\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def complete_size(out: Path) -> int | None:
    """Products of the complete catalogue in ``out``; None if there is none (or it is incomplete)."""
    meta_path = out / "catalogue.json"
    if not (out / "catalogue.parquet").is_file() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # an unreadable catalogue is not worth protecting
    if not isinstance(meta, dict) or meta.get("complete") is False:
        return None  # our own interrupted import: resuming it must replace it
    try:
        return len(Catalogue.load(out))
    except (CatalogueError, OSError):
        return None


def refuse_smaller(out: Path, previous: int | None, kept: int, force: bool, log: ImportLog, stage: str) -> None:
    """Raise :class:`ImportRefusedError` if ``kept`` products would replace ``previous`` (more)."""
    if force or previous is None or kept >= previous:
        return
    msg = (f"{out}: this import kept {kept} product(s) after its {stage} phase, the complete catalogue there "
           f"has {previous}; it was left unchanged (rerun with --force to replace it; see {log.path})")
    log.write(str(out), "refused", msg)
    raise ImportRefusedError(msg)


__all__ = ["LOG_KEEP", "ImportLog", "ImportRefusedError", "complete_size", "refuse_smaller", "rotate_log"]
