"""Exact top-k of a dense score matrix on the CPU by block maxima (numpy), without a full selection.

For each row, split the columns into ``m >= k`` blocks (block g: columns g, g + m, g + 2m, ...)
and take each block's maximum. The k-th largest of those m maxima is the score of k *distinct*
columns, so it is a lower bound ``L`` on the row's k-th largest score: every column of the exact
top k scores ``>= L``, and only blocks whose maximum is ``>= L`` (k of them, unless ties) can hold
one. Those blocks are gathered (a few percent of the row), their columns ``>= L`` listed, and that
short list is sorted by (score desc, tie rank asc); its first k are the exact top k, ties
included. No arithmetic touches a score (only comparisons), so the result is the one a full sort
gives. The same with a per-row depth R gives R-precision's numerator (:func:`relevant_in_top`).

Cost: one pass of block maxima (elementwise maxima of contiguous slabs, under 1 ns per score here)
plus work on the gathered blocks; ``torch.topk`` plus the tie handling it needs costs several times that.
"""

from __future__ import annotations

import numpy as np

def blocks_for(n: int, k: int) -> int:
    """Number of strided blocks for :func:`topk_blocks` on rows of ``n >= k`` columns, depth ``k``.

    Blocks of up to 64 columns, at least 16k of them when the row is long enough (blocks of one
    column otherwise: a plain selection): fewer, longer blocks make the maxima pass cheaper but
    the gathered blocks longer.
    """
    return n // min(64, max(1, n // (16 * k)))


def _candidates(s: np.ndarray, depth: np.ndarray, key: np.ndarray | None, m: int):
    """Columns of each row that can be in its top ``depth[row]`` (``1 <= depth <= m``), sorted by (row asc,
    score desc, tie rank asc): ``(rows, cols, first)``; row i's list starts at ``first[i]``. Block g
    holds the columns ``g, g + m, g + 2m, ...``: its maximum is an elementwise maximum of slabs.
    """
    b, n = s.shape
    bs = n // m
    main = s[:, : m * bs].reshape(b, bs, m)
    bmax = main.max(axis=1)  # NaN propagates into its block's maximum
    if np.isnan(bmax).any() or (m * bs < n and np.isnan(s[:, m * bs :]).any()):
        raise ValueError("NaN in the score matrix")
    at = m - depth
    # the depth-th largest block maximum: the score of depth distinct columns, so <= the depth-th score
    lo = np.partition(bmax, np.unique(at), axis=1)[np.arange(b), at]
    r, g = np.nonzero(bmax >= lo[:, None])  # the blocks that can hold a top column
    blk = main[r, :, g]  # [pairs, bs] gathered copies
    i, j = np.nonzero(blk >= lo[r, None])
    rows, cols, vals = [r[i]], [j * m + g[i]], [blk[i, j]]
    if m * bs < n:  # the tail columns past the last whole block: always compared
        tr, tc = np.nonzero(s[:, m * bs :] >= lo[:, None])
        rows.append(tr), cols.append(tc + m * bs), vals.append(s[tr, tc + m * bs])
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    return _sort_candidates(b, rows, cols, vals, cols if key is None else key[cols], n)


def _sort_candidates(b: int, rows, cols, vals, tie, n: int):
    """``(rows, cols, first)`` sorted by (row asc, score desc, tie rank asc); ``first``: each row's start."""
    per_row = np.bincount(rows, minlength=b)  # >= depth: the depth block maxima >= lo are columns
    first = np.cumsum(per_row) - per_row
    width = int(per_row.max(initial=0))
    if b * width > 4 * len(rows):  # rows of very different lengths: one sort of the flat list
        o = np.lexsort((tie, -vals, rows))
        return rows[o], cols[o], first
    # A few candidates in every row: sort each row of a padded [b, width] table (much faster than lexsort).
    o = np.argsort(rows.astype(np.int32), kind="stable")  # radix sort; rows are nearly in order already
    rows, cols, vals, tie = rows[o], cols[o], vals[o], tie[o]
    slot = np.arange(len(rows)) - first[rows]
    neg, key = np.full((b, width), np.inf), np.full((b, width), n, dtype=np.int64)  # padding sorts last
    neg[rows, slot], key[rows, slot] = -vals, tie
    o1 = np.argsort(key, axis=1)  # tie ranks are distinct within a row
    o1 = np.take_along_axis(o1, np.argsort(np.take_along_axis(neg, o1, 1), axis=1, kind="stable"), 1)
    table = np.zeros((b, width), dtype=cols.dtype)
    table[rows, slot] = cols
    flat = np.take_along_axis(table, o1, 1)[rows, slot]  # row i's sorted columns, back in its flat slots
    return rows, flat, first


def topk_blocks(s: np.ndarray, k: int, key: np.ndarray | None, m: int) -> np.ndarray:
    """Exact top-``k`` columns of each row of ``s`` [B, N] (no NaN) by score desc, then ``key`` asc.

    Args:
        s: ``[B, N]`` real scores, C-contiguous rows.
        k: depth, ``1 <= k <= m``.
        key: ``[N]`` int64 tie rank of each column (a permutation); None: the column index.
        m: number of blocks (from :func:`blocks_for`).

    Returns:
        ``[B, k]`` int64 column indices, best first.

    Raises:
        ValueError: NaN in ``s``.
    """
    _, cols, first = _candidates(s, np.full(len(s), k), key, m)
    return cols[first[:, None] + np.arange(k)]


def deep_blocks(n: int, depth_max: int) -> int:
    """Number of strided blocks (of up to 8 columns, at least ``depth_max <= n``) for :func:`relevant_in_top`."""
    return n // min(8, max(1, n // max(1, depth_max)))


def relevant_in_top(s: np.ndarray, depth: np.ndarray, key: np.ndarray | None, m: int, rel_of) -> np.ndarray:
    """How many of each row's exact top ``depth[row]`` columns are relevant (R-precision's numerator).

    Args:
        s: ``[B, N]`` real scores (no NaN).
        depth: ``[B]`` int64, ``1 <= depth <= m``.
        key: tie rank of each column, as for :func:`topk_blocks`.
        m: from :func:`deep_blocks`.
        rel_of: ``rel_of(rows, cols)`` -> bool array, whether column ``cols[i]`` is relevant to row ``rows[i]``.

    Returns:
        ``[B]`` int64 counts.
    """
    rows, cols, first = _candidates(s, depth, key, m)
    top = np.arange(len(rows)) - first[rows] < depth[rows]
    return np.bincount(rows[top], weights=rel_of(rows[top], cols[top]), minlength=len(s)).astype(np.int64)


__all__ = ["blocks_for", "topk_blocks", "deep_blocks", "relevant_in_top"]
