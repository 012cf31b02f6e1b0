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


def _disjoint_catalogue():
    paths = [("R", f"L{i % 10}") for i in range(200)]
    return Catalogue.from_products([Product(f"p{i}", "t", ("a",), p) for i, p in enumerate(paths)])


def test_disjoint_split_holds_out_whole_categories():
    from cti_repro.data.pairs import hold_out_categories

    cat = _disjoint_catalogue()
    base = build_setting(cat, "most_specific", SplitConfig(seed=3))
    d = build_setting(cat, "most_specific", SplitConfig(seed=3, disjoint_categories=0.3))
    assert len(d.held_out) == 3 and d.held_out <= set(base.labels)  # round(0.3 * 10) labels
    train_val = set(d.labels[np.concatenate([d.split["train"], d.split["val"]])])
    assert not (train_val & d.held_out)  # none of their products trains or validates
    held_products = {i for i, lab in enumerate(d.labels) if lab in d.held_out}
    assert held_products <= set(d.split["test"].tolist())  # all of them are evaluated on
    # the other products keep their product-level split; the parts still partition the catalogue
    for s in ("train", "val"):
        assert set(d.split[s].tolist()) == set(base.split[s].tolist()) - held_products
    assert np.array_equal(np.sort(np.concatenate(list(d.split.values()))), np.arange(len(cat)))
    assert set(np.asarray(d.queries)[~d.seen]) == d.held_out  # unseen by design, and only them
    assert d.summary()["held_out_categories"] == 3
    # seeded: same seed same categories, another seed (almost surely) others
    again = build_setting(cat, "most_specific", SplitConfig(seed=3, disjoint_categories=0.3))
    assert again.held_out == d.held_out
    assert {build_setting(cat, "most_specific", SplitConfig(seed=s, disjoint_categories=0.3)).held_out
            for s in range(5)} != {d.held_out}
    # off by default, and bounded: at least one, never all
    assert base.held_out == frozenset()
    _, one = hold_out_categories(base.split, base.labels, 0.01, 0)
    _, most = hold_out_categories(base.split, base.labels, 0.99, 0)
    assert len(one) == 1 and len(most) == 9
    with pytest.raises(ValueError, match="disjoint"):
        hold_out_categories(base.split, base.labels, 1.0)


def test_disjoint_split_config_validation(tmp_path):
    from cti_repro.config import ConfigError, load_config

    cfg = tmp_path / "c.yml"
    cfg.write_text("defaults: {split: {disjoint_categories: 1.5}}\nprofiles: {p: {}}\n")
    with pytest.raises(ConfigError, match="split.disjoint_categories"):
        load_config("p", cfg)
