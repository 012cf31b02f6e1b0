"""Exact top-k of a dense score matrix in one pass per row, compiled with numba (when installed).

:mod:`cti_repro.evaluation.select` needs several numpy passes per chunk (block maxima, a
partition, a gather, a sort); here each row is read once: a column enters a sorted list of ``k``
(score desc, tie rank asc) only when it beats the list's last entry, which after the first few
hundred columns almost none does, so the pass costs about one comparison per score. Comparisons
only, no arithmetic on a score: the result is the one a full sort gives, ties included, and equal
to :func:`cti_repro.evaluation.select.topk_blocks` (tests compare the two).

numba is optional (``ranx`` brings it with the ``[dev]`` extra): :func:`available` says whether it
imports, and the caller falls back to the numpy path. Compiled functions are cached on disk
(``cache=True``), so a new process pays the compilation (~2 s) once per machine, not per run.
The function releases the GIL: the evaluator runs one chunk per thread.
"""

from __future__ import annotations

import functools

import numpy as np

# Below this many scores (the whole matrix) the evaluator stays in numpy: importing numba and
# loading the compiled kernel (~0.5 s per process) would cost more than it saves (a row of the
# embedded study has ~2e5 scores, the paper's test split 2e7).
MIN_SCORES = 1 << 22


@functools.lru_cache(maxsize=1)
def _kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def topk_rows(s, k, rank, out):  # pragma: no cover - compiled
        n_rows, n = s.shape
        vals = np.empty(k, s.dtype)
        ranks = np.empty(k, np.int64)
        cols = np.empty(k, np.int64)
        for i in range(n_rows):
            row = s[i]
            filled = 0
            last, last_rank = row[0], rank[0]  # the list's last entry, in registers
            for j in range(n):
                v = row[j]
                if filled == k:  # the list is full: most columns stop at the first test
                    if v < last:
                        continue
                    r = rank[j]
                    if v == last and r > last_rank:
                        continue
                    p = k - 1
                else:
                    r = rank[j]
                    p = filled
                    filled += 1
                if v != v:  # NaN (it compares false above, so it always gets here): not ranked
                    return i
                while p > 0 and (vals[p - 1] < v or (vals[p - 1] == v and ranks[p - 1] > r)):
                    vals[p] = vals[p - 1]
                    ranks[p] = ranks[p - 1]
                    cols[p] = cols[p - 1]
                    p -= 1
                vals[p] = v
                ranks[p] = r
                cols[p] = j
                last, last_rank = vals[k - 1], ranks[k - 1]
            out[i, :] = cols
        return -1

    return topk_rows


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True when numba imports (then :func:`topk_rows` works)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def topk_rows(s: np.ndarray, k: int, key: np.ndarray | None) -> np.ndarray:
    """Exact top-``k`` columns of each row of ``s`` [B, N] (no NaN) by score desc, then ``key`` asc.

    Args:
        s: ``[B, N]`` float32 / float64 scores.
        k: depth, ``1 <= k <= N``.
        key: ``[N]`` int64 tie rank of each column (a permutation); None: the column index.

    Returns:
        ``[B, k]`` int64 column indices, best first.

    Raises:
        ValueError: NaN in ``s``.
    """
    s = np.ascontiguousarray(s)
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k must be in [1, {s.shape[1]}], got {k}")
    rank = np.arange(s.shape[1], dtype=np.int64) if key is None else np.ascontiguousarray(key, dtype=np.int64)
    out = np.empty((s.shape[0], k), dtype=np.int64)
    if _kernel()(s, int(k), rank, out) >= 0:
        raise ValueError("NaN in the score matrix")
    return out


__all__ = ["MIN_SCORES", "available", "topk_rows"]
