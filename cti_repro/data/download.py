"""HTTP downloads with resume, size check, retry and atomic rename (stdlib ``urllib`` only).

A download goes to ``DEST.part``. If a ``.part`` file is already there, the request asks for the
rest with an HTTP ``Range`` header and appends (a server that ignores the range answers 200, and
the file is started again). The finished file is compared with the size the server announced
(``Content-Length``, or the total of ``Content-Range``); only a file of the right size is renamed
to ``DEST``, so ``DEST`` existing means "complete" and it is never fetched again. A short file
is an error that is retried (resuming from what arrived), never silently accepted.

Hostile sources are bounded: only ``http``/``https`` URLs are fetched (a redirect elsewhere, e.g.
to ``file:``, is refused at once, not retried), a download stops at ``max_bytes`` and at an
overall ``deadline`` (a server that drips one byte every few seconds never trips the per-read
socket timeout), and a download that fails for good leaves no ``.part`` file behind.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

USER_AGENT = "cti-repro/0.1 (+https://github.com/; research reproduction)"
CHUNK = 1 << 16

# 4xx answers that may succeed on a later try; every other 4xx is final (404, 403, ...).
_RETRIABLE_4XX = {408, 425, 429}
ALLOWED_SCHEMES = ("http", "https")
DEFAULT_MAX_BYTES = 8 << 20   # per image; metadata files pass their own (larger) cap


class DownloadError(OSError):
    """A download failed for good (after retries, or with a final HTTP status).

    Attributes:
        url: the URL.
        status: HTTP status if the server answered with an error, else None.
        resumable: retries ran out on transient failures; the ``.part`` file is kept for a resume.
    """

    def __init__(self, url: str, message: str, status: int | None = None, resumable: bool = False) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status
        self.resumable = resumable  # the .part is a good prefix to resume from (transient failures)


class _Retry(Exception):
    """Internal: this attempt failed in a way that another attempt may fix."""


def check_url(url: str) -> None:
    """Raise :class:`DownloadError` unless ``url`` is an http(s) URL with a host."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme.lower() not in ALLOWED_SCHEMES or not parsed.netloc:
        raise DownloadError(url, f"only http(s) URLs are downloaded, not {parsed.scheme or 'a bare path'!r}")


class _SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only; anything else (file:, ftp:, data:) is a final error."""

    def http_error_302(self, req, fp, code, msg, headers):  # noqa: D102 (urllib API)
        location = headers.get("location") or headers.get("uri")
        if location:  # checked before urllib's own test, which allows ftp: and answers a retried HTTPError
            try:
                check_url(urllib.parse.urljoin(req.full_url, location))
            except DownloadError as exc:
                fp.close()
                raise DownloadError(req.full_url, f"HTTP {code} redirect refused: {exc}") from None
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_OPENER = urllib.request.build_opener(_SafeRedirectHandler)


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


def _attempt(url: str, part: Path, timeout: float, max_bytes: int | None = None,
             deadline: float | None = None) -> int:
    """One request: fetch (the rest of) ``url`` into ``part``. Returns the final size.

    Args:
        max_bytes: the file may not grow past this (announced or sent); None: no cap.
        deadline: ``time.monotonic()`` value after which the download is abandoned; None: none.

    Raises:
        _Retry: transient failure (network, 5xx, short body); ``part`` keeps what arrived.
        DownloadError: final failure (e.g. 404, a refused redirect, too large, past the deadline).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)

    def remaining() -> float:
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise DownloadError(url, f"overall deadline passed after {part.stat().st_size if part.exists() else 0} bytes")
        return min(timeout, left)

    try:
        resp = _OPENER.open(req, timeout=remaining())
    except DownloadError:
        raise  # a refused redirect or the deadline: final (DownloadError is an OSError, caught below)
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
        if max_bytes is not None and expected is not None and expected > max_bytes:
            raise DownloadError(url, f"announces {expected} bytes, more than the cap of {max_bytes}")
        try:
            with open(part, "ab" if offset else "wb") as fh:
                size = offset
                while True:
                    if resp.fp is not None and getattr(resp.fp, "raw", None) is not None:
                        with contextlib.suppress(OSError, AttributeError):
                            resp.fp.raw._sock.settimeout(remaining())  # per read: never past the deadline
                    block = resp.read1(CHUNK)  # one recv at most: a drip cannot outlast the deadline
                    if not block:
                        break
                    size += len(block)
                    if max_bytes is not None and size > max_bytes:
                        raise DownloadError(url, f"more than the cap of {max_bytes} bytes")
                    fh.write(block)
                    remaining()
        except DownloadError:
            raise
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
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    deadline: float | None = 300.0,
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
        max_bytes: largest accepted file in bytes (None: no cap); a larger one is a final error.
        deadline: seconds for the whole download, all attempts and waits included (None: none).

    Returns:
        ``"present"`` if ``dest`` already existed (no request made), else ``"downloaded"``.

    Raises:
        DownloadError: not an http(s) URL, final HTTP error, a refused redirect, over
            ``max_bytes`` or ``deadline``, retries exhausted, or ``verify`` rejected the file. The
            ``.part`` file is removed then, except after transient failures (``resumable``:
            short bodies, dropped connections) or an interrupt such as Ctrl-C, which resume.
    """
    check_url(url)
    dest = Path(dest)
    if dest.is_file():
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    try:
        return _download(url, dest, part, retries, timeout, backoff, verify, max_bytes,
                         None if deadline is None else time.monotonic() + deadline)
    except DownloadError as exc:
        if not exc.resumable:
            part.unlink(missing_ok=True)
        raise


def _download(url: str, dest: Path, part: Path, retries: int, timeout: float, backoff: float,
              verify: Callable[[Path], None] | None, max_bytes: int | None, deadline: float | None) -> str:
    """The attempts of :func:`download_file` (which removes ``part`` on a final error)."""
    last = "no attempt"
    for attempt in range(max(0, retries) + 1):
        if attempt:
            wait = backoff * (2 ** (attempt - 1))
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise DownloadError(url, f"overall deadline passed after {attempt} attempt(s): {last}")
            time.sleep(wait)
        try:
            _attempt(url, part, timeout, max_bytes, deadline)
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
    raise DownloadError(url, f"failed after {max(0, retries) + 1} attempt(s): {last}", resumable=True)
