"""Exact top-k of a dense score matrix in one pass per row, compiled with numba (when installed).

:mod:`cti_repro.evaluation.select` needs several numpy passes per chunk (block maxima, a
partition, a gather, a sort); here each row is read once: a column enters a sorted list of ``k``
(score desc, tie rank asc) only when it beats the list's last entry, which after the first few
hundred columns almost none does: whole blocks of 64 columns are then skipped after one
vectorised test, so the pass costs well under a nanosecond per score. Comparisons
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
# Columns per block of the kernel's skip test (a multiple of the SIMD width).
_SKIP = 64


@functools.lru_cache(maxsize=1)
def _kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def topk_rows(s, depth, rank, out):  # pragma: no cover - compiled
        n_rows, n = s.shape
        cap = out.shape[1]
        vals = np.empty(cap, s.dtype)
        ranks = np.empty(cap, np.int64)
        cols = np.empty(cap, np.int64)
        for i in range(n_rows):
            row, k = s[i], depth[i]
            filled = 0
            last, last_rank = row[0], rank[0]  # the list's last entry, in registers
            j = 0
            while j < n:
                stop = j + 1
                if filled == k and j + _SKIP <= n:
                    # A whole block that cannot enter the full list (every score < last, no NaN) is
                    # skipped after one branch-free, SIMD-vectorised count; the others go one by one.
                    hit = 0
                    for t in range(j, j + _SKIP):
                        v = row[t]
                        hit += (v >= last) | (v != v)
                    if hit == 0:
                        j += _SKIP
                        continue
                    stop = j + _SKIP
                while j < stop:
                    v = row[j]
                    if filled == k:  # the list is full: most columns stop at the first test
                        if v < last:
                            j += 1
                            continue
                        r = rank[j]
                        if v == last and r > last_rank:
                            j += 1
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
                    j += 1
            out[i, :k] = cols[:k]
            out[i, k:] = -1
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


def _run(s: np.ndarray, depth: np.ndarray, cap: int, key: np.ndarray | None) -> np.ndarray:
    s = np.ascontiguousarray(s)
    if len(depth) and not (1 <= depth.min() and depth.max() <= min(cap, s.shape[1])):
        raise ValueError(f"depths must be in [1, {s.shape[1]}]")
    rank = np.arange(s.shape[1], dtype=np.int64) if key is None else np.ascontiguousarray(key, dtype=np.int64)
    out = np.empty((s.shape[0], cap), dtype=np.int64)
    if _kernel()(s, np.ascontiguousarray(depth, dtype=np.int64), rank, out) >= 0:
        raise ValueError("NaN in the score matrix")
    return out


def topk_rows(s: np.ndarray, k: int, key: np.ndarray | None) -> np.ndarray:
    """Exact top-``k`` columns of each row of ``s`` [B, N] (no NaN) by score desc, then ``key`` asc.

    Args:
        s: ``[B, N]`` float32 / float64 scores.
        k: depth, ``1 <= k <= N``.
        key: ``[N]`` int64 tie rank of each column (a permutation); None: the column index.

    Returns:
        ``[B, k]`` int64 column indices, best first.

    Raises:
        ValueError: NaN in ``s``, or ``k`` outside ``[1, N]``.
    """
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k must be in [1, {s.shape[1]}], got {k}")
    return _run(s, np.full(len(s), k, dtype=np.int64), k, key)


# Deeper than this the sorted list's insertions (O(depth) each) cost more than numpy's block maxima.
MAX_DEPTH = 256


def relevant_in_top(s: np.ndarray, depth: np.ndarray, key: np.ndarray | None, c_codes: np.ndarray,
                    q_codes: np.ndarray) -> np.ndarray:
    """How many of each row's exact top ``depth[row]`` columns are relevant (R-precision's numerator),
    relevance being ``c_codes[col] == q_codes[row]``: :func:`cti_repro.evaluation.select.relevant_in_top`
    for depths up to :data:`MAX_DEPTH`.

    Returns:
        ``[B]`` int64 counts.

    Raises:
        ValueError: NaN in ``s``, or a depth outside ``[1, min(N, MAX_DEPTH)]``.
    """
    depth = np.asarray(depth, dtype=np.int64)
    cols = _run(s, depth, int(depth.max(initial=1)), key)
    hit = (np.take(c_codes, np.maximum(cols, 0)) == np.asarray(q_codes)[:, None]) & (cols >= 0)
    return hit.sum(1).astype(np.int64)


def kth_largest(s: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Each row's ``depth[row]``-th largest score (``np.partition``'s value, without its one pass per
    distinct depth), for depths up to :data:`MAX_DEPTH`.

    Raises:
        ValueError: NaN in ``s``, or a depth outside ``[1, min(N, MAX_DEPTH)]``.
    """
    depth = np.asarray(depth, dtype=np.int64)
    if len(depth) and depth.max() > MAX_DEPTH:
        raise ValueError(f"depths must be in [1, {MAX_DEPTH}]")
    cols = _run(s, depth, int(depth.max(initial=1)), None)
    return np.ascontiguousarray(s)[np.arange(len(s)), cols[np.arange(len(s)), depth - 1]]


__all__ = ["MIN_SCORES", "MAX_DEPTH", "available", "topk_rows", "relevant_in_top", "kth_largest"]
