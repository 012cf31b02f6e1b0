"""Reading TREC qrels and run files safely: bounded lines and sizes, interned ids, numpy columns.

Memory grows with the input's size: every distinct id is stored once (a ``str`` in an
:class:`IdTable`), each line as a few integers and a float. No fixed-width string array of all
ids is built (its size would be the longest id times the number of ids).

Hostile files are refused with one ``ValueError`` naming the file and line: anything that is not a
regular file (``/dev/zero``, a named pipe, a folder), a line longer than :data:`MAX_LINE_BYTES`,
a gzip file that inflates more than :data:`GZIP_MAX_RATIO` times its size (a "gzip bomb"), bytes
that are not UTF-8, and malformed, non-numeric or non-finite fields.

Accepted as ``trec_eval`` 10 accepts them: ``#`` comment lines (in qrels a ``#`` in the first
column, in runs the first non-blank character, as in its ``get_qrels.c`` / ``get_trec_results.c``),
blank lines, any whitespace between fields, and text after a run line's tag. A UTF-8 byte-order mark is stripped.
"""

from __future__ import annotations

import array
import gzip
import math
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAX_LINE_BYTES = 1 << 16
"""Longest accepted line (bytes, newline included): far above any real TREC line."""
GZIP_MAX_RATIO = 100
"""A gzip file may inflate to this many times its own size (TREC text compresses 4-20x)."""
GZIP_MIN_ALLOWANCE = 16 << 20
"""Small gzip files may always inflate to this many bytes, whatever their ratio."""

_BOM = "\ufeff"


class IdTable:
    """Interns ids: each distinct string gets one integer code (0, 1, ... in order of first sight)."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, name: str) -> int:
        """The code of ``name``, a new one if it was not seen before."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.names)
            self.names.append(name)
        return code

    def __len__(self) -> int:
        return len(self.names)

    def string_order(self) -> np.ndarray:
        """``rank[code]``: each id's position in byte-wise (``strcmp``, i.e. code point) order."""
        order = np.argsort(np.array(self.names, dtype=object), kind="stable")
        rank = np.empty(len(self.names), dtype=np.int64)
        rank[order] = np.arange(len(self.names), dtype=np.int64)
        return rank


@dataclass(frozen=True)
class TrecLines:
    """One TREC file as columns, one entry per data line.

    ``query`` and ``doc`` are codes into the :class:`IdTable` objects passed to the reader;
    ``value`` is the relevance (qrels) or the score (run); ``line`` the 1-based line number.
    """

    path: str
    query: np.ndarray  # int64
    doc: np.ndarray  # int64
    value: np.ndarray  # float64
    line: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.query)


def _regular_file_size(path: Path) -> int:
    """The size of ``path``, refusing anything but a regular file before it is opened."""
    st = os.stat(path)  # FileNotFoundError & co. name the path themselves
    if not stat.S_ISREG(st.st_mode):  # /dev/zero, a fifo (open() would block), a folder
        raise ValueError(f"{path}: not a regular file")
    return st.st_size


def _is_gzip(raw: BinaryIO) -> bool:
    """Sniff the gzip magic number (rather than trust the suffix); leaves the file at its start."""
    magic = raw.read(2)
    raw.seek(0)
    return magic == b"\x1f\x8b"


def iter_lines(path: str | Path, *, indented_comments: bool) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of the data lines of a text or gzip TREC file.

    Blank lines and comment lines are skipped (a line whose first character is ``#``; with
    ``indented_comments`` also one whose first non-blank character is). A BOM is stripped.

    Raises:
        ValueError: ``"<path>:<line>: ..."`` for a non-regular file, an over-long line, a gzip
            bomb, bytes that are not UTF-8 or a broken gzip stream.
    """
    path = Path(path)
    size = _regular_file_size(path)
    lineno, inflated = 0, 0
    try:
        with open(path, "rb") as raw:
            gz = _is_gzip(raw)
            stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            limit = max(GZIP_MIN_ALLOWANCE, GZIP_MAX_RATIO * size) if gz else None
            while True:
                data = stream.readline(MAX_LINE_BYTES + 1)
                if not data:
                    return
                lineno += 1
                inflated += len(data)
                if limit is not None and inflated > limit:
                    raise ValueError(f"{path}:{lineno}: gzip data inflates past {limit} bytes (the larger of "
                                     f"{GZIP_MIN_ALLOWANCE >> 20} MiB and {GZIP_MAX_RATIO}x the file's size): "
                                     "refused as a likely gzip bomb")
                if len(data) > MAX_LINE_BYTES and not data.endswith(b"\n"):
                    raise ValueError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES} bytes")
                text = data.decode("utf-8")
                if lineno == 1 and text.startswith(_BOM):
                    text = text[1:]
                if text.startswith("#") or (indented_comments and text.lstrip().startswith("#")):
                    continue
                fields = text.split()
                if fields:
                    yield lineno, fields
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}:{lineno}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (EOFError, OSError, zlib.error) as exc:  # truncated or fake gzip
        raise ValueError(f"{path}:{lineno + 1}: cannot read ({type(exc).__name__}: {exc})") from None


class _Columns:
    """Typed growing columns (8 bytes a value, not a Python object each), numpy views at the end."""

    def __init__(self) -> None:
        self.query, self.doc, self.line = array.array("q"), array.array("q"), array.array("q")
        self.value = array.array("d")

    def add(self, query: int, doc: int, value: float, line: int) -> None:
        self.query.append(query)
        self.doc.append(doc)
        self.value.append(value)
        self.line.append(line)

    def finish(self, path: str | Path) -> TrecLines:
        return TrecLines(str(path), np.frombuffer(self.query, dtype=np.int64), np.frombuffer(self.doc, dtype=np.int64),
                         np.frombuffer(self.value, dtype=np.float64), np.frombuffer(self.line, dtype=np.int64))


def _number(path: str | Path, lineno: int, what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}:{lineno}: {what} {text!r} is not finite")
    return value


def _refuse_repeats(lines: TrecLines, message: str, queries: IdTable, docs: IdTable) -> None:
    """Raise for the first line (in file order) that repeats an earlier (query, doc) pair."""
    if len(lines) < 2:
        return
    order = np.lexsort((lines.line, lines.doc, lines.query))
    q, d = lines.query[order], lines.doc[order]
    repeat = (q[1:] == q[:-1]) & (d[1:] == d[:-1])
    if repeat.any():
        at = order[1:][repeat]
        first = at[np.argmin(lines.line[at])]
        qid, docid = queries.names[lines.query[first]], docs.names[lines.doc[first]]
        raise ValueError(f"{lines.path}:{lines.line[first]}: " + message.format(q=qid, d=docid))


def read_qrels(path: str | Path, queries: IdTable, docs: IdTable) -> TrecLines:
    """Read TREC qrels ``qid iter docid rel`` (the iteration column is ignored).

    Args:
        path: qrels file (plain or gzip).
        queries, docs: id tables the codes refer to (share them with :func:`read_run`).

    Returns:
        The lines as columns; ``value`` is the relevance (rel > 0 is relevant).

    Raises:
        ValueError: naming the file and line for a wrong column count, a non-numeric or
            non-finite relevance or a repeated (qid, docid) pair (and see :func:`iter_lines`).
    """
    cols = _Columns()
    for lineno, f in iter_lines(path, indented_comments=False):
        if len(f) != 4:
            raise ValueError(f"{path}:{lineno}: expected 4 columns 'qid 0 docid rel', got {len(f)}")
        cols.add(queries.code(f[0]), docs.code(f[2]), _number(path, lineno, "relevance", f[3]), lineno)
    lines = cols.finish(path)
    _refuse_repeats(lines, "repeated judgement for query {q!r}, doc {d!r}", queries, docs)
    return lines


def read_run(path: str | Path, queries: IdTable, docs: IdTable) -> TrecLines:
    """Read a TREC run ``qid Q0 docid rank score tag`` (Q0, rank, tag and any later text are ignored).

    Args:
        path: run file (plain or gzip).
        queries, docs: id tables the codes refer to (share them with :func:`read_qrels`).

    Returns:
        The lines as columns; ``value`` is the score.

    Raises:
        ValueError: naming the file and line for a wrong column count, a non-numeric or
            non-finite score, or a document listed twice for one query (and see :func:`iter_lines`).
    """
    cols = _Columns()
    for lineno, f in iter_lines(path, indented_comments=True):
        if len(f) < 6:  # trec_eval ignores text after the tag (its test suite has such lines)
            raise ValueError(f"{path}:{lineno}: expected 6 columns 'qid Q0 docid rank score tag', got {len(f)}")
        cols.add(queries.code(f[0]), docs.code(f[2]), _number(path, lineno, "score", f[4]), lineno)
    lines = cols.finish(path)
    _refuse_repeats(lines, "doc {d!r} listed twice for query {q!r}", queries, docs)
    return lines
