"""Subset filters at import (data.xmarket.min_attributes / min_depth), approximating the paper's subset."""

import json

import pytest

from cti_repro.config import ConfigError, load_config
from cti_repro.data.catalogue import Catalogue
from cti_repro.data.prepare import prepare_catalogue
from cti_repro.data.xmarket import import_xmarket
from tests.data.test_xmarket import FAST, png_bytes, record, server, write_gz  # noqa: F401  (fixture)

# (asin, attributes, depth): kept with min_attributes=3, min_depth=3 only if both hold
GRID = [("A1D2", 1, 2), ("A3D2", 3, 2), ("A1D4", 1, 4), ("A3D3", 3, 3), ("A5D4", 5, 4), ("A2D5", 2, 5)]


def _source(src, base=None):
    lines = []
    for asin, n_attr, depth in GRID:
        over = {"features": [f"f{i}" for i in range(n_attr)], "categories": [f"L{i}" for i in range(depth)]}
        if base:
            over["imgUrl"] = json.dumps({f"{base}/img/{asin}.png": [8, 6]})
        lines.append(json.dumps(record(asin, **over)))
    write_gz(src / "metadata_us_Books.json.gz", lines)


def test_filters_keep_what_they_say_and_are_recorded(tmp_path):
    src = tmp_path / "src"
    _source(src)
    loose = import_xmarket(str(src), "us", tmp_path / "loose", skip_images=True)
    assert loose["kept"] == 6 and loose["dropped"]["no_attributes"] == loose["dropped"]["shallow_path"] == 0
    s = import_xmarket(str(src), "us", tmp_path / "strict", skip_images=True, min_attributes=3, min_depth=3)
    cat = Catalogue.load(tmp_path / "strict")
    assert cat.product_ids == ["A3D3", "A5D4"] and s["kept"] == 2
    # attributes are checked first: A1D2, A1D4, A2D5 are no_attributes; A3D2 is shallow_path
    assert s["dropped"]["no_attributes"] == 3 and s["dropped"]["shallow_path"] == 1
    assert cat.meta["filters"] == {"min_attributes": 3, "min_depth": 3}
    assert cat.stats()["attributes_min"] == 3 and cat.stats()["depth_min"] == 3


@pytest.mark.parametrize("key,value", [("min_attributes", 0), ("min_depth", 1)])
def test_config_checks_the_filters(key, value):
    with pytest.raises(ConfigError, match=f"data.xmarket.{key}"):
        load_config("xmarket", overrides={f"data.xmarket.{key}": value})


def test_filters_leave_the_config_hash_to_the_data_fingerprint():
    base = load_config("xmarket")
    assert load_config("xmarket", overrides={"data.xmarket.min_depth": 4}).hash() == base.hash()


def test_prepare_applies_the_config_filters_and_warns_on_a_different_catalogue(tmp_path, server, capsys):  # noqa: F811
    src, out = tmp_path / "src", tmp_path / "out"
    _source(src, server.base)
    for asin, _, _ in GRID:
        server.files[f"/img/{asin}.png"] = png_bytes()
    over = {"data.dir": str(out), "data.xmarket.source": str(src), "data.xmarket.workers": 1}
    cfg = load_config("xmarket", overrides={**over, "data.xmarket.min_attributes": 3, "data.xmarket.min_depth": 3})
    assert prepare_catalogue(cfg).product_ids == ["A3D3", "A5D4"]
    capsys.readouterr()
    assert len(prepare_catalogue(cfg)) == 2 and capsys.readouterr().err == ""  # what the config asks: silent
    # the same complete catalogue under a config with other filters: used as it is, with one warning
    other = load_config("xmarket", overrides=over)
    assert len(prepare_catalogue(other)) == 2 and len(prepare_catalogue(other)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings than data.xmarket" in err[0] and "'min_attributes': 3" in err[0]
