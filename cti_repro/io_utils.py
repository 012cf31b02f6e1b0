"""Small I/O helpers shared across modules: atomic writes and stable hashing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def naming_path(path: str | Path) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block with ``path`` as its file name.

    A failed ``write()`` or ``fsync()`` (ENOSPC: disk full, EROFS: read-only file system, EDQUOT)
    carries no file name, and a failed ``mkstemp`` names a random temporary: the user must see
    which file could not be written. The exception keeps its class and errno (callers that catch
    ``OSError`` or test ``errno`` see no difference); an error that already names ``path`` passes as is.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and str(exc.filename) == str(path) or exc.errno is None:
            raise
        try:
            named = type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
        except TypeError:  # a subclass with another constructor: keep the original
            raise exc from None
        raise named from exc


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    A reader never sees a half-written file, and an interrupted write leaves the old one intact.
    A failure (disk full, read-only folder) raises ``OSError`` naming ``path`` (:func:`naming_path`).
    """
    path = Path(path)
    with naming_path(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, new_file_mode())  # mkstemp makes 0600 files; a plain open() honours the umask
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


@contextlib.contextmanager
def folder_lock(folder: str | Path, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``folder`` for the block (``flock`` on the folder itself).

    Processes that write the same cache take turns (each ``open`` is its own lock, so threads of
    one process take turns too); the lock goes with the descriptor when the block ends or the
    process dies, and no lock file is left behind. Where the file system cannot lock a folder
    (some NFS setups), a ``.lock`` file inside it is locked instead.

    Args:
        folder: the folder (created if missing).
        waiting: printed to stderr once if another holder makes this call wait.
    """
    import fcntl
    import sys

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # no flock on folders here: a lock file instead
            os.close(fd)
            fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def new_file_mode() -> int:
    """The mode ``open()`` would give a new file (0666 less the umask): for files made by ``mkstemp`` (0600)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomic text write (UTF-8); see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON write with sorted keys and indentation (diff-friendly)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex sha256 of the canonical JSON of ``obj`` (sorted keys), truncated to ``length``."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:length]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
