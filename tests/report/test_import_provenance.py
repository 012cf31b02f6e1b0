"""The XMarket import (source, file categories "k of 16", drop counts) in results, the provenance box
and the data page."""

import json

from cti_repro import report
from cti_repro.data.catalogue import Catalogue, Product
from cti_repro.data.import_meta import describe_import, import_provenance
from cti_repro.report import data_page
from cti_repro.run.row import _import_info
from tests.data.test_xmarket import build_source
from tests.report.test_tables import make_record

# catalogue.json as import_xmarket writes it (3 of the 16 file categories, every drop reason)
META = {
    "source": "https://xmarket.example/data", "market": "us", "skip_images": False,
    "categories": ["Books", "Electronics", "Toys_and_Games"], "requested_categories": [],
    "complete": True, "fingerprint": "abc",
    "summary": {"files": 3, "lines": 130, "records": 120, "malformed": 4, "blank": 1, "duplicates": 2,
                "file_errors": 0, "files_failed": 13, "files_downloaded": 3, "files_present": 0, "kept": 100,
                "dropped": {"no_id": 0, "no_title": 5, "no_image_url": 3, "no_attributes": 6, "shallow_path": 2,
                            "image_failed": 2},
                "images": {"downloaded": 90, "present": 10, "failed": 2}, "path_elements_dropped": 1,
                "log": "x/import_log.txt", "out": "x", "source": "https://xmarket.example/data", "market": "us",
                "categories": ["Books", "Electronics", "Toys_and_Games"]},
}


def test_import_provenance_from_meta():
    info = import_provenance(META)
    assert info["categories"] == META["categories"] and info["categories_of"] == 16
    assert (info["records"], info["kept"], info["malformed"], info["files_failed"]) == (120, 100, 4, 13)
    assert info["dropped"]["no_title"] == 5 and info["images"] == {"downloaded": 90, "present": 10, "failed": 2}
    assert "log" not in info and "out" not in info  # paths of the machine that imported: not results
    assert import_provenance({"source": "synthetic", "generator": "x"}) == {}
    assert _import_info({"source": "synthetic"}) == {} and _import_info(META)["import"] == info
    text = describe_import(info)
    assert text.startswith("XMarket us market from https://xmarket.example/data; file categories: 3 of 16 (Books")
    assert "120 records read, 100 kept" in text and "no_title 5" in text and "no_id" not in text  # zero: left out
    assert "4 malformed" in text and "13 files failed" in text and "INCOMPLETE" not in text
    assert "INCOMPLETE" in describe_import({**info, "complete": False})
    assert info["filters"] == {"min_attributes": 1, "min_depth": 2} and "filters" not in text  # defaults: not said
    strict = describe_import(import_provenance({**META, "filters": {"min_attributes": 3, "min_depth": 4}}))
    assert "filters: >= 3 attributes, depth >= 4" in strict


def test_provenance_box_shows_the_import():
    rec = make_record("all", "CLIP", 0)
    rec["data"]["import"] = import_provenance({**META, "source": "<script>x</script>"})
    p = report.provenance([rec, make_record("all", "CLIP", 1)])
    assert len(p["imports"]) == 1 and "3 of 16" in p["imports"][0]
    box = report.provenance_html([rec])
    assert "<th style=\"text-align:left;padding-right:1em;vertical-align:top\">Import</th>" in box
    assert "3 of 16 (Books, Electronics, Toys_and_Games)" in box and "no_attributes 6" in box
    assert "<script>" not in box and "&lt;script&gt;" in box  # escaped
    assert ">Import</th>" not in report.provenance_html([make_record("all", "CLIP", 0)])  # none recorded


def test_data_page_import_table_on_a_real_import(tmp_path):
    from cti_repro.data.xmarket import import_xmarket

    src, out = tmp_path / "src", tmp_path / "out"
    build_source(src, tmp_path / "marker")
    s = import_xmarket(str(src), "us", out, skip_images=True)
    cat = Catalogue.load(out)
    table = data_page.import_table(cat)["value"]
    assert table["source"] == str(src)
    assert table["file categories imported"] == "3 of 16: Automotive, Electronics, Toys_and_Games"
    assert table["records"] == f"{s['records']:,}" and table["kept"] == f"{s['kept']:,}"
    assert table["dropped: no title"] == "1" and table["malformed (lines)"] == "4" and table["duplicates"] == "1"
    assert table["import complete"] == "yes"
    # an interrupted one says so; a synthetic catalogue has none
    interrupted = Catalogue(cat.frame, out, {k: v for k, v in cat.meta.items() if k != "summary"} | {"complete": False})
    assert data_page.import_table(interrupted)["value"]["import complete"].startswith("NO")
    assert data_page.import_table(Catalogue.from_products([Product("p", "t", ("a",), ("R", "L"))])) is None


def test_data_template_shows_the_import_table():
    from pathlib import Path

    nb = json.loads((Path(__file__).parents[2] / "book" / "templates" / "data.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("data_page.import_table(catalogue)" in c for c in code)


def test_result_records_carry_the_import(tmp_path):
    from cti_repro.config import load_config
    from cti_repro.data.synthetic import generate_synthetic
    from cti_repro.run.row import run_row

    # a small catalogue whose catalogue.json is that of an XMarket import
    generate_synthetic(tmp_path / "d", products=120, seed=0)
    cat = Catalogue.load(tmp_path / "d")
    cat.meta = dict(META)
    cat.save(tmp_path / "d")
    cfg = load_config("smoke", overrides={"data.source": "dir", "data.dir": str(tmp_path / "d"),
                                          "cache_dir": str(tmp_path / "c")})
    path = run_row(setting="most_specific", model="BM25", profile="smoke", seed=0, out_dir=tmp_path / "o", cfg=cfg)
    rec = json.loads(open(path).read())
    assert rec["data"]["import"] == import_provenance(META)
    assert "3 of 16" in report.provenance_html([rec])
