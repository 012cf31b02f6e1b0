"""HTTP downloads with resume, size check, retry and atomic rename (stdlib ``urllib`` only).

A download goes to ``DEST.part``. If a ``.part`` file is already there, the request asks for the
rest with an HTTP ``Range`` header and appends (a server that ignores the range answers 200, and
the file is started again). The finished file is compared with the size the server announced
(``Content-Length``, or the total of ``Content-Range``); only a file of the right size is renamed
to ``DEST``, so ``DEST`` existing means "complete" and it is never fetched again. A short file
is an error that is retried (resuming from what arrived), never silently accepted.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

USER_AGENT = "cti-repro/0.1 (+https://github.com/; research reproduction)"
CHUNK = 1 << 16

# 4xx answers that may succeed on a later try; every other 4xx is final (404, 403, ...).
_RETRIABLE_4XX = {408, 425, 429}


class DownloadError(OSError):
    """A download failed for good (after retries, or with a final HTTP status).

    Attributes:
        url: the URL.
        status: HTTP status if the server answered with an error, else None.
    """

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status


class _Retry(Exception):
    """Internal: this attempt failed in a way that another attempt may fix."""


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _expected_size(resp: http.client.HTTPResponse, offset: int) -> int | None:
    """Total file size announced by the server, or None if it did not say."""
    content_range = resp.headers.get("Content-Range")
    if resp.status == 206 and content_range:
        m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", content_range.strip())
        if m and m.group(3) != "*":
            return int(m.group(3))
    length = resp.headers.get("Content-Length")
    if length is not None and length.strip().isdigit():
        return int(length) + (offset if resp.status == 206 else 0)
    return None


def _attempt(url: str, part: Path, timeout: float) -> int:
    """One request: fetch (the rest of) ``url`` into ``part``. Returns the final size.

    Raises:
        _Retry: transient failure (network, 5xx, short body); ``part`` keeps what arrived.
        DownloadError: final failure (e.g. 404).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # Our .part is not a prefix the server can continue (e.g. the file changed): restart.
            part.unlink(missing_ok=True)
            raise _Retry(f"HTTP 416 for range {offset}-, restarting") from exc
        if 400 <= exc.code < 500 and exc.code not in _RETRIABLE_4XX:
            raise DownloadError(url, f"HTTP {exc.code} {exc.reason}", status=exc.code) from exc
        raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError) as exc:
        raise _Retry(f"{type(exc).__name__}: {exc}") from exc
    with resp:
        if offset and resp.status != 206:
            offset = 0  # the server ignored the Range header and sends the whole file
        expected = _expected_size(resp, offset)
        try:
            with open(part, "ab" if offset else "wb") as fh:
                while block := resp.read(CHUNK):
                    fh.write(block)
        except (http.client.HTTPException, socket.timeout, OSError) as exc:
            raise _Retry(f"interrupted after {part.stat().st_size} bytes: {type(exc).__name__}: {exc}") from exc
    size = part.stat().st_size
    if expected is not None and size != expected:
        if size > expected:  # cannot be fixed by resuming; start over
            part.unlink(missing_ok=True)
        raise _Retry(f"size {size} bytes, server announced {expected}")
    return size


def download_file(
    url: str,
    dest: str | Path,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    verify: Callable[[Path], None] | None = None,
) -> str:
    """Download ``url`` to ``dest`` with resume, size check and retries.

    Args:
        url: http(s) URL.
        dest: final path; written only once complete (and verified).
        retries: extra attempts after the first for transient failures.
        timeout: socket timeout per request in seconds.
        backoff: first wait between attempts in seconds; doubles each time.
        verify: called with the complete ``.part`` file before the rename; raising any
            exception rejects the file (it is deleted, not retried: the server sent all of it).

    Returns:
        ``"present"`` if ``dest`` already existed (no request made), else ``"downloaded"``.

    Raises:
        DownloadError: final HTTP error, retries exhausted, or ``verify`` rejected the file.
    """
    dest = Path(dest)
    if dest.is_file():
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    last = "no attempt"
    for attempt in range(max(0, retries) + 1):
        if attempt:
            time.sleep(backoff * (2 ** (attempt - 1)))
        try:
            _attempt(url, part, timeout)
        except _Retry as exc:
            last = str(exc)
            continue
        if verify is not None:
            try:
                verify(part)
            except Exception as exc:  # any decoder error means a bad file
                part.unlink(missing_ok=True)
                raise DownloadError(url, f"verification failed: {type(exc).__name__}: {exc}") from exc
        os.replace(part, dest)
        return "downloaded"
    raise DownloadError(url, f"failed after {max(0, retries) + 1} attempt(s): {last}")
