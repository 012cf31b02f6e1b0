"""Distances in the category tree, as arrays for the graded metrics and the tree-aware losses.

Categories are names on root-first paths (``Home > Kitchen > Coffee Machines``). Two notions:

- **on-path distance** of a candidate product to a query category (graded relevance): if the
  query lies on the candidate's own path, ``d = |depth(label) - depth(query)|`` measured along
  that path (``label`` is the candidate's category in the setting, so ``d = 0`` is an exact
  match); otherwise the candidate is *off-path* (another tree, or a sibling branch of the same
  tree), coded ``-1``.
- **label distance** between two category labels (losses): ``|depth(a) - depth(b)|`` if ``a`` and
  ``b`` lie on one root-to-leaf path of *some* product (one is an ancestor of the other, the
  "same tree" of the paper's Table 2, as in :func:`cti_repro.run.row.error_analysis`), ``0`` for
  ``a == b``, else ``-1``.

Both are returned as arrays (scipy sparse / numpy), so :mod:`cti_repro.evaluation` and
:mod:`cti_repro.models` never see a catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

OFF_PATH = -1


def on_path_distances(queries: Sequence[str], cand_labels: Sequence[str], cand_paths: Sequence[Sequence[str]]) -> sp.csr_matrix:
    """Sparse [Q, N] matrix of on-path distance + 1 (0 = off-path, 1 = exact match, 2 = one level off...).

    Stored shifted by one so that the sparse zero means "off-path"; :func:`topk_distances` and
    :func:`distance_counts` undo the shift. Size: at most one entry per (candidate, path node).

    Args:
        queries: the query categories (rows).
        cand_labels: each candidate's category label in the setting (columns).
        cand_paths: each candidate's root-first category path (it must contain the label).

    Returns:
        ``csr_matrix`` of int32, shape [len(queries), len(cand_labels)].

    Example:
        >>> m = on_path_distances(["K", "C"], ["C", "D"], [["K", "C"], ["K", "C", "D"]])
        >>> (m.toarray() - 1).tolist()
        [[1, 2], [0, 1]]
    """
    if len(cand_labels) != len(cand_paths):
        raise ValueError(f"{len(cand_labels)} labels but {len(cand_paths)} paths")
    q_index = {q: i for i, q in enumerate(queries)}
    rows, cols, vals = [], [], []
    for j, (label, path) in enumerate(zip(cand_labels, cand_paths)):
        path = list(path)
        if label not in path:
            raise ValueError(f"candidate {j}: label {label!r} is not on its path {path}")
        at = path.index(label)
        seen: set[str] = set()
        for i, node in enumerate(path):
            qi = q_index.get(node)
            if qi is not None and node not in seen:  # a name repeated on a path counts once (first)
                seen.add(node)
                rows.append(qi)
                cols.append(j)
                vals.append(abs(i - at) + 1)
    return sp.csr_matrix((np.asarray(vals, np.int32), (rows, cols)), shape=(len(queries), len(cand_labels)), dtype=np.int32)


def topk_distances(dist: sp.csr_matrix, idx: np.ndarray) -> np.ndarray:
    """On-path distance of each retrieved candidate: ``[Q, k]`` int, :data:`OFF_PATH` (-1) if off-path.

    Args:
        dist: :func:`on_path_distances` of the same queries and candidates.
        idx: candidate column of each rank, ``[Q, k]`` (the evaluator's top-k).
    """
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return np.zeros(idx.shape, np.int64)
    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
    got = np.asarray(dist[rows, idx.ravel()]).ravel().astype(np.int64) - 1
    return got.reshape(idx.shape)


def distance_counts(dist: sp.csr_matrix, max_distance: int | None = None) -> np.ndarray:
    """Candidates per query at each on-path distance: ``[Q, D + 1]`` int (column d = distance d).

    Args:
        dist: :func:`on_path_distances`.
        max_distance: D (default: the largest distance present; 0 if none).
    """
    dist = dist.tocsr()
    d_max = int(dist.data.max()) - 1 if dist.nnz else 0
    d_max = d_max if max_distance is None else int(max_distance)
    out = np.zeros((dist.shape[0], d_max + 1), np.int64)
    rows = np.repeat(np.arange(dist.shape[0]), np.diff(dist.indptr))
    keep = dist.data - 1 <= d_max
    np.add.at(out, (rows[keep], dist.data[keep] - 1), 1)
    return out


def label_distance_matrix(labels: Sequence[str], paths: Sequence[Sequence[str]]) -> np.ndarray:
    """Tree distance between every two labels: ``[L, L]`` int, -1 where not on one path.

    ``D[a, b] = |depth(a) - depth(b)|`` taken on the first path (in ``paths`` order) holding both;
    ``D[a, a] = 0``. Symmetric. Labels absent from every path only get their diagonal.

    Args:
        labels: the label vocabulary (row/column order; e.g. sorted label names of a setting).
        paths: category paths, root first.

    Example:
        >>> label_distance_matrix(["A", "B", "C", "X"], [["A", "B", "C"], ["X"]]).tolist()
        [[0, 1, 2, -1], [1, 0, 1, -1], [2, 1, 0, -1], [-1, -1, -1, 0]]
    """
    index = {c: i for i, c in enumerate(labels)}
    out = np.full((len(labels), len(labels)), OFF_PATH, dtype=np.int64)
    np.fill_diagonal(out, 0)
    for path in dict.fromkeys(tuple(p) for p in paths):  # unique, in order (set order varies per run)
        on = [(i, index[c]) for i, c in enumerate(path) if c in index]
        for i, a in on:
            for j, b in on:
                if a != b and out[a, b] == OFF_PATH:
                    out[a, b] = out[b, a] = abs(i - j)
    return out


__all__ = ["OFF_PATH", "on_path_distances", "topk_distances", "distance_counts", "label_distance_matrix"]
