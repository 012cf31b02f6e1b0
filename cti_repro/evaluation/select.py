"""Exact top-k of a dense score matrix on the CPU by block maxima (numpy), without a full selection.

For each row, split the columns into ``m >= k`` contiguous blocks and take each block's maximum.
The k-th largest of those m maxima is the score of k *distinct* columns, so it is a lower bound
``L`` on the row's k-th largest score: every column of the exact top k scores ``>= L``, and only
blocks whose maximum is ``>= L`` (about k + 1 of them) can hold one. Those blocks are gathered
(a few percent of the row), their columns ``>= L`` listed, and that short list is sorted by
(score desc, tie rank asc); its first k are the exact top k, ties included. No floating-point
arithmetic touches a score (only comparisons), so the result is the one a full sort would give.

Cost: one pass of block maxima (a contiguous reduction, about 1 ns per score) plus work on the
gathered blocks; ``torch.topk`` plus the tie handling it needs costs several times that.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 64  # columns per block at least; the maxima pass is fastest with long contiguous blocks


def blocks_for(n: int, k: int) -> int:
    """Number of blocks for rows of ``n`` columns and depth ``k`` (0: too few columns, use a full selection)."""
    m = min(max(4 * k, n // _BLOCK), 16 * k)
    return m if n // m >= 4 else 0


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
    b, n = s.shape
    bs = n // m
    main = s[:, : m * bs].reshape(b, m, bs)
    bmax = main.max(axis=2)  # NaN propagates into its block's maximum
    if np.isnan(bmax).any() or (m * bs < n and np.isnan(s[:, m * bs :]).any()):
        raise ValueError("NaN in the score matrix")
    lo = np.partition(bmax, m - k, axis=1)[:, m - k]  # k-th largest block maximum: <= the k-th score
    r, g = np.nonzero(bmax >= lo[:, None])  # the blocks that can hold a top-k column
    blk = main[r, g]  # [pairs, bs] gathered copies
    i, j = np.nonzero(blk >= lo[r, None])
    rows, cols, vals = [r[i]], [g[i] * bs + j], [blk[i, j]]
    if m * bs < n:  # the tail columns past the last whole block: always compared
        tr, tc = np.nonzero(s[:, m * bs :] >= lo[:, None])
        rows.append(tr), cols.append(tc + m * bs), vals.append(s[tr, tc + m * bs])
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    tie = cols if key is None else key[cols]
    o = np.lexsort((tie, -vals, rows))  # row asc, then score desc, then tie rank asc
    cols = cols[o]
    per_row = np.bincount(rows, minlength=b)  # >= k: the k block maxima >= lo are columns
    first = np.cumsum(per_row) - per_row
    return cols[first[:, None] + np.arange(k)]


__all__ = ["blocks_for", "topk_blocks"]
