import numpy as np
import pytest

from cti_repro.data.catalogue import Catalogue, Product
from cti_repro.config import SplitConfig
from cti_repro.data.pairs import build_setting, category_labels, split_products
from cti_repro.study import SETTINGS

PATHS = [["A", "A1", "A1x"], ["A", "A2"], ["B", "B1", "B1y", "B1y2"], ["B", "B1"]]


def test_general_and_specific_labels():
    assert category_labels(PATHS, "most_general") == ["A", "A", "B", "B"]
    assert category_labels(PATHS, "most_specific") == ["A1x", "A2", "B1y2", "B1"]


def test_all_setting_draws_once_from_the_path_with_a_seed():
    a = category_labels(PATHS, "all", draw_seed=3)
    assert a == category_labels(PATHS, "all", draw_seed=3)
    assert all(lab in path for lab, path in zip(a, PATHS))
    many = [category_labels(PATHS * 50, "all", draw_seed=s) for s in range(2)]
    assert many[0] != many[1]
    # uniform over levels: on a depth-4 path each level is drawn ~25% of the time
    draws = category_labels([PATHS[2]] * 4000, "all", draw_seed=0)
    freq = np.array([draws.count(c) for c in PATHS[2]]) / 4000
    assert np.all(np.abs(freq - 0.25) < 0.03)


def test_unknown_setting_and_empty_path():
    with pytest.raises(ValueError, match="unknown setting"):
        category_labels(PATHS, "leaf")
    with pytest.raises(ValueError, match="non-empty"):
        category_labels([[]], "all")


def test_split_partitions_with_sizes():
    s = split_products(1000, seed=1)
    assert [len(s[k]) for k in ("train", "val", "test")] == [800, 100, 100]
    assert np.array_equal(np.sort(np.concatenate(list(s.values()))), np.arange(1000))
    assert np.array_equal(split_products(1000, seed=1)["test"], s["test"])
    assert not np.array_equal(split_products(1000, seed=2)["test"], s["test"])
    with pytest.raises(ValueError):
        split_products(10, fractions=(0.5, 0.5, 0.5))


def test_setting_queries_relevance_and_seen():
    prods = [Product(f"p{i}", f"t{i}", ("a",), tuple(PATHS[i % 4])) for i in range(40)]
    cat = Catalogue.from_products(prods)
    for setting in SETTINGS:
        d = build_setting(cat, setting, SplitConfig(seed=0))
        test_labels = d.labels[d.candidates]
        assert d.queries == sorted(set(test_labels))
        rel = d.relevance()
        assert rel.shape == (len(d.queries), len(d.candidates))
        # every query has at least one relevant candidate, and the row sums are the label counts
        assert np.array_equal(rel.sum(1), [np.sum(test_labels == q) for q in d.queries])
        train = set(d.labels[d.split["train"]])
        assert d.seen.tolist() == [q in train for q in d.queries]
        s = d.summary()
        assert s["test_queries"] == s["test_queries_seen"] + s["test_queries_unseen"]
    # the split is shared by the three settings
    splits = [build_setting(cat, s).split["test"] for s in SETTINGS]
    assert all(np.array_equal(splits[0], x) for x in splits)


def test_unseen_category_marked():
    # one product with a unique leaf; put it in test by construction of the seed search
    prods = [Product(f"p{i}", "t", ("a",), ("R", "common")) for i in range(20)] + [Product("x", "t", ("a",), ("R", "rare"))]
    cat = Catalogue.from_products(prods)
    for seed in range(100):
        d = build_setting(cat, "most_specific", SplitConfig(seed=seed))
        if 20 in d.candidates:
            assert d.queries == ["common", "rare"] or d.queries == ["rare"]
            assert not d.seen[d.queries.index("rare")]
            return
    pytest.fail("no seed put the rare product in test")
