"""data.category_key: path keys a category by its full path, so homonyms become distinct categories."""

import pytest

from cti_repro.config import ConfigError, beyond_the_paper, load_config
from cti_repro.data.catalogue import Catalogue, Product
from cti_repro.data.pairs import build_setting
from cti_repro.data.prepare import prepare_catalogue
from cti_repro.report import data_page

# "Accessories" under two parents: one name, two categories
PRODUCTS = [
    Product("p1", "mug tray", ("a",), ("Home", "Kitchen", "Accessories")),
    Product("p2", "cable", ("a",), ("Electronics", "Accessories")),
    Product("p3", "mug", ("a",), ("Home", "Kitchen", "Mugs")),
    Product("p4", "hdmi", ("a",), ("Electronics", "Accessories")),
]


def test_counts_by_name_and_by_path():
    cat = Catalogue.from_products(PRODUCTS)
    s = cat.stats()
    # names: Home Kitchen Accessories Electronics Mugs; paths: Home, Home>Kitchen, Home>Kitchen>Accessories,
    # Electronics, Electronics>Accessories, Home>Kitchen>Mugs
    assert (s["unique_categories"], s["unique_category_paths"], s["homonym_names"], s["leaf_categories"]) == (5, 6, 1, 2)
    keyed = cat.keyed_by_path()
    k = keyed.stats()
    assert (k["unique_categories"], k["unique_category_paths"], k["homonym_names"], k["leaf_categories"]) == (6, 6, 0, 3)
    assert keyed[1].category_path == ("Electronics", "Electronics > Accessories")
    assert keyed.meta["by_name"]["unique_categories"] == 5 and keyed.meta["category_key"] == "path"
    assert keyed.fingerprint() != cat.fingerprint()  # caches and results keep the two apart
    assert list(cat)[0].category_path == ("Home", "Kitchen", "Accessories")  # the original is unchanged
    # most specific setting: 2 labels by name, 3 by path
    leaves = lambda c: {c.paths[i][-1] for i in range(len(c))}  # noqa: E731
    assert len(leaves(cat)) == 2 and len(leaves(keyed)) == 3
    assert set(build_setting(keyed, "most_specific").labels) <= leaves(keyed)
    table = data_page.statistics_table(keyed)
    assert table.loc["unique categories", "this catalogue"] == "6 (by path)"
    assert table.loc["unique categories", "this catalogue, by name"] == "5"
    assert "this catalogue, by name" not in data_page.statistics_table(cat)


def test_prepare_keys_by_path_and_the_config_says_so(tmp_path):
    Catalogue.from_products(PRODUCTS).save(tmp_path)
    over = {"data.source": "dir", "data.dir": str(tmp_path)}
    by_name, by_path = load_config("smoke", overrides=over), load_config("smoke", overrides={**over, "data.category_key": "path"})
    assert len({p[-1] for p in prepare_catalogue(by_name).paths}) == 2
    assert len({p[-1] for p in prepare_catalogue(by_path).paths}) == 3
    assert Catalogue.load(tmp_path).paths[1] == ["Electronics", "Accessories"]  # on disk: still by name
    assert beyond_the_paper(by_path) == {"data.category_key": "path"} and beyond_the_paper(by_name) == {}
    assert by_path.hash() == by_name.hash()  # the data fingerprint tells them apart
    with pytest.raises(ConfigError, match="data.category_key"):
        load_config("smoke", overrides={"data.category_key": "id"})
