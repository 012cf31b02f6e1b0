"""Category-product pairs for the paper's three evaluation settings, the split, seen/unseen marks.

For every product there is exactly one pair per setting (``book/deviations.md``):

- ``all``: a category drawn uniformly from the product's path, once per product, with its own seed
  (drawn for the whole catalogue *before* splitting, so the draw does not depend on the split);
- ``most_general``: the root of the path;
- ``most_specific``: the leaf of the path.

The split is product-level (80/10/10 by default) and shared by the three settings, so a product's
image never appears in two splits. Queries are the unique category labels among the test pairs,
candidates are all test products, and a candidate is relevant iff its label equals the query.
A test category is *seen* if some training pair carries the same label.

Category-disjoint split (``split.disjoint_categories: f``, an extension, off by default): per
setting, a seeded share ``f`` of the setting's own labels (``round(f * L)``, at least one) is held
out: every product carrying such a label moves to the test split (out of train and val), the
other products keep the product-level split. So the held-out categories are unseen by design and
the rest of the test set still has seen categories. The held-out labels are drawn per setting
(the settings label products differently), so with ``f > 0`` the split is no longer shared by the
three settings. In ``all`` a held-out label can still have its descendants or ancestors in train.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from cti_repro.config import SplitConfig
from cti_repro.data.catalogue import Catalogue
from cti_repro.study import SETTINGS

SPLITS: tuple[str, ...] = ("train", "val", "test")


def category_labels(paths: list[list[str]], setting: str, draw_seed: int = 0) -> list[str]:
    """One category label per product for ``setting``.

    Args:
        paths: category paths, root first.
        setting: one of :data:`cti_repro.study.SETTINGS`.
        draw_seed: seed of the once-per-product draw of the ``all`` setting.

    Returns:
        A list of category names aligned with ``paths``.
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; expected one of {SETTINGS}")
    if any(len(p) == 0 for p in paths):
        raise ValueError("every product needs a non-empty category path")
    if setting == "most_general":
        return [p[0] for p in paths]
    if setting == "most_specific":
        return [p[-1] for p in paths]
    rng = np.random.default_rng(draw_seed)
    # One uniform draw per product in catalogue order; uniform over the path's levels.
    u = rng.random(len(paths))
    return [p[int(x * len(p))] for p, x in zip(paths, u)]


def split_products(
    n: int, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, np.ndarray]:
    """Random product-level split.

    Args:
        n: number of products.
        seed: permutation seed.
        fractions: train / val / test shares (must sum to 1).

    Returns:
        ``{"train": idx, "val": idx, "test": idx}`` with sorted index arrays that partition
        ``range(n)``. Sizes are ``round(f * n)`` for train and val, the rest for test.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative shares summing to 1, got {fractions}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    parts = np.split(perm, [n_train, n_train + n_val])
    return {name: np.sort(idx) for name, idx in zip(SPLITS, parts)}


@dataclass
class SettingData:
    """Labels, split and evaluation sets of one setting.

    Attributes:
        setting: the setting's name.
        labels: the category label of every product (aligned with the catalogue).
        split: index arrays per split (shared across settings).
        paths: every product's category path (for the error analysis of Table 2).
        held_out: categories held out of train/val by the category-disjoint split (empty if off).
    """

    setting: str
    labels: np.ndarray
    split: dict[str, np.ndarray]
    paths: list[list[str]]
    held_out: frozenset[str] = frozenset()

    @cached_property
    def train_categories(self) -> set[str]:
        """Category labels of the training pairs."""
        return set(self.labels[self.split["train"]].tolist())

    @cached_property
    def queries(self) -> list[str]:
        """Unique test category labels, sorted (the query set)."""
        return sorted(set(self.labels[self.split["test"]].tolist()))

    @property
    def candidates(self) -> np.ndarray:
        """Catalogue indices of the candidate products (the test split)."""
        return self.split["test"]

    @cached_property
    def seen(self) -> np.ndarray:
        """Boolean per query: does the category occur among the training pairs?"""
        train = self.train_categories
        return np.array([q in train for q in self.queries], dtype=bool)

    def relevance(self) -> np.ndarray:
        """Boolean matrix (queries x candidates): candidate label == query."""
        cand = self.labels[self.candidates]
        q = np.asarray(self.queries, dtype=object)
        return q[:, None] == cand[None, :]

    def pairs(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(product indices, labels) of the pairs of one split."""
        idx = self.split[split]
        return idx, self.labels[idx]

    def summary(self) -> dict[str, int]:
        """Counts of pairs per split, categories, queries and seen / unseen queries (stored in results)."""
        return {
            "setting": self.setting,
            **{f"{s}_pairs": int(len(self.split[s])) for s in SPLITS},
            "categories": int(len(set(self.labels.tolist()))),
            "train_categories": len(self.train_categories),
            "test_queries": len(self.queries),
            "test_queries_seen": int(self.seen.sum()),
            "test_queries_unseen": int((~self.seen).sum()),
            "held_out_categories": len(self.held_out),
        }


def build_setting(catalogue: Catalogue, setting: str, split: SplitConfig | None = None) -> SettingData:
    """Labels, split and evaluation sets for one setting of a catalogue.

    Args:
        catalogue: the products.
        setting: one of :data:`cti_repro.study.SETTINGS`.
        split: the config's ``split`` section (fractions, split seed, the ``all`` draw seed);
            default: 80/10/10 with seeds 0.

    Returns:
        The setting's :class:`SettingData`.

    Example:
        >>> data = build_setting(cat, "most_specific", cfg.split)
        >>> data.queries[:3], data.seen[:3]
    """
    split = split or SplitConfig()
    paths = catalogue.paths
    labels = np.asarray(category_labels(paths, setting, split.all_draw_seed), dtype=object)
    parts = split_products(len(catalogue), split.seed, split.fractions)
    held: frozenset[str] = frozenset()
    if split.disjoint_categories > 0:
        parts, held = hold_out_categories(parts, labels, split.disjoint_categories, split.seed)
    return SettingData(setting, labels, parts, paths, held)


def hold_out_categories(
    parts: dict[str, np.ndarray], labels: np.ndarray, fraction: float, seed: int = 0,
) -> tuple[dict[str, np.ndarray], frozenset[str]]:
    """Move every product of a seeded share of the labels into the test split.

    Args:
        parts: a product-level split (:func:`split_products`).
        labels: each product's label in the setting.
        fraction: share of the distinct labels to hold out, in (0, 1); ``round(fraction * L)``,
            at least 1 and at most L - 1 (something must stay to train on).
        seed: the split seed (the draw uses its own stream derived from it).

    Returns:
        (the new split, the held-out labels).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"disjoint_categories must be in (0, 1), got {fraction}")
    uniq = sorted(set(labels.tolist()))
    if len(uniq) < 2:
        raise ValueError("a category-disjoint split needs at least two categories")
    n_hold = min(max(1, int(round(fraction * len(uniq)))), len(uniq) - 1)
    rng = np.random.default_rng([seed, 0xD15])  # independent of the product permutation's stream
    held = frozenset(uniq[i] for i in rng.choice(len(uniq), n_hold, replace=False))
    is_held = np.array([lab in held for lab in labels.tolist()], dtype=bool)
    out = {s: idx[~is_held[idx]] for s, idx in parts.items() if s != "test"}
    out["test"] = np.sort(np.concatenate([parts["test"], *(idx[is_held[idx]] for s, idx in parts.items() if s != "test")]))
    return {s: out[s] for s in SPLITS}, held
