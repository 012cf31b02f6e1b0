"""`reproduce` resuming an interrupted XMarket import: only with the settings it started with."""

import json

import pytest

import cti_repro.data.xmarket as xm
from cti_repro.config import load_config
from cti_repro.data.import_log import ImportRefusedError
from cti_repro.data.prepare import prepare_catalogue
from tests.data.test_xmarket import FAST, png_bytes, record, server, write_gz  # noqa: F401  (fixture)


@pytest.fixture
def interrupted(tmp_path, server, monkeypatch):  # noqa: F811
    """Two file categories; an import of Books only, stopped (Ctrl-C) in its image phase."""
    src, out = tmp_path / "src", tmp_path / "out"
    for cat, names in (("Books", "abc"), ("Toys_and_Games", "de")):
        for n in names:
            server.files[f"/img/{n}.png"] = png_bytes()
        write_gz(src / f"metadata_us_{cat}.json.gz", [
            json.dumps(record(n.upper(), imgUrl=json.dumps({f"{server.base}/img/{n}.png": [8, 6]}))) for n in names])
    real = xm.download_file

    def stop_at_b(url, dest, **kw):
        if url.endswith("/b.png"):
            raise KeyboardInterrupt
        return real(url, dest, **kw)

    monkeypatch.setattr(xm, "download_file", stop_at_b)
    with pytest.raises(KeyboardInterrupt):
        xm.import_xmarket(str(src), "us", out, categories=["Books"], workers=1, **FAST)
    monkeypatch.setattr(xm, "download_file", real)
    meta = json.loads((out / "catalogue.json").read_text())
    assert meta["complete"] is False and meta["requested_categories"] == ["Books"]
    return src, out


def _cfg(out, source, categories, **more):
    return load_config("xmarket", overrides={"data.dir": str(out), "data.xmarket.source": str(source),
                                             "data.xmarket.categories": categories, "data.xmarket.workers": 1,
                                             **{f"data.xmarket.{k}": v for k, v in more.items()}})


@pytest.mark.parametrize("change", ["categories", "all", "source", "filters"])
def test_resume_with_other_settings_is_refused_naming_both(interrupted, tmp_path, change):
    src, out = interrupted
    other = tmp_path / "elsewhere"
    other.mkdir()
    source, cats = (other if change == "source" else src), {"categories": ["Toys_and_Games"], "all": []}.get(
        change, ["Books"])
    more = {"min_attributes": 2} if change == "filters" else {}
    before = (out / "catalogue.json").read_bytes()
    with pytest.raises(ImportRefusedError) as info:
        prepare_catalogue(_cfg(out, source, cats, **more))
    msg = str(info.value)
    assert "\n" not in msg and "catalogue.json" in msg and "recorded vs config" in msg
    if change == "source":
        assert str(src) in msg and str(other) in msg
    elif change == "filters":
        assert "'min_attributes': 1" in msg and "'min_attributes': 2" in msg and "categories" not in msg
    else:
        assert "['Books']" in msg and (str(cats) if cats else "vs all") in msg
    assert (out / "catalogue.json").read_bytes() == before  # nothing was touched


def test_resume_with_the_recorded_settings_completes_it(interrupted):
    src, out = interrupted
    cat = prepare_catalogue(_cfg(out, str(src) + "/", ["Books"]))  # same folder, spelt differently
    assert cat.meta["complete"] is True and cat.product_ids == ["A", "B", "C"]
    assert cat.stats()["images_missing"] == 0
