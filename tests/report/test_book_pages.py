"""The smoke book's pages as a reader meets them (issue 19): every page says what it is, every
table names its rows, every command is the one this build needs, every link and download works.

Uses the session's smoke book (``tests/smoke.py``: all rows, one sensitivity variant, one
extension). The HTML checks need no browser (``tests/report/book_checks.py``); the layout checks
use headless Chromium and are skipped without it.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.report import book_checks as bc

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# the box every results page opens with (the text-image chapter: its own "Not a reproduction" box)
BOXES = ("Provenance", "Demonstration, not a reproduction", "Not a reproduction")


def _text(page: Path) -> str:
    """A page's text, tags removed and white space collapsed (code spans split words into tags)."""
    text = unescape(re.sub(r"<[^>]+>", "", re.sub(r"</?(p|div|td|th|tr|pre|li|h\d|br)\b[^>]*>", " ", page.read_text(encoding="utf-8"))))
    return re.sub(r"\s+", " ", text)


def _generated(html: Path) -> list[Path]:
    """The pages a build generates (report, data, row and text-image pages)."""
    return [p for p in bc.pages(html) if p.relative_to(html).parts[:2] == ("runs", "_book")]


@pytest.fixture(scope="module")
def html(smoke_book) -> Path:
    assert smoke_book.code == 0
    return smoke_book.html


@pytest.fixture(scope="module")
def browser():
    yield from bc.chromium_session()


def test_every_internal_link_and_download_resolves(html):
    # the deviation rows' anchors (`dev-<n>`) come with issue 23's deviations page: until that page
    # defines any, links into it are checked for the file only
    pending = () if 'id="dev-' in (html / "deviations.html").read_text() else ("deviations.html",)
    assert len(bc.pages(html)) >= 15
    assert bc.broken_links(html, pending) == []


def test_link_check_can_fail(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html#x">b</a><a href="gone.md">gone</a><img src="c.png" alt="c">'
                                     '<a href="#here">self</a><p id="here"></p>')
    (tmp_path / "b.html").write_text('<p id="y"></p>')
    assert [p.split(": ", 2)[-1] for p in bc.broken_links(tmp_path)] == [
        "no anchor #x in b.html", "no such file", "no such file"]


def test_browser_tests_skip_without_chromium(monkeypatch):
    monkeypatch.setattr(bc, "chromium_binary", lambda: None)
    with pytest.raises(pytest.skip.Exception, match="chromium not installed"):
        next(bc.chromium_session())


def test_page_weights_under_the_bound(html):
    weights = {p.relative_to(html).as_posix(): bc.page_weight(p) for p in bc.pages(html)}
    largest = max(weights, key=weights.get)
    print(f"largest page: {largest}, {weights[largest]:,} bytes")
    assert {k: v for k, v in weights.items() if v > bc.PAGE_WEIGHT_LIMIT} == {}


def test_no_absolute_path_of_the_build_machine(html, smoke_study):
    assert bc.absolute_paths(html, [str(smoke_study.base), str(REPO)]) == []


def test_every_image_has_a_text_alternative(html):
    bad = [(p.relative_to(html).as_posix(), img.get("alt")) for p in bc.pages(html) for img in bc.parse(p).images
           if not (img.get("alt") or "").strip() or re.search(r"_images/|\.(png|svg|jpe?g)$", img.get("alt") or "")]
    assert bad == []


def test_every_results_page_opens_with_its_provenance(html):
    pages = [p for p in _generated(html) if "FAILED" not in p.stem]
    names = {p.relative_to(html).as_posix() for p in pages}
    assert {"runs/_book/data.html", "runs/_book/report/4_report_ablations.html",
            "runs/_book/report/5_report_beyond.html"} <= names
    for page in pages:
        titles = re.findall(r'class="admonition-title"[^>]*>([^<]+)<', page.read_text())
        assert titles and titles[0] in BOXES, (page.name, titles[:2])
        # a smoke build is synthetic with a random image tower: the page says so, in those words
        # (the text-image chapter's own box is issue 20's)
        assert "synthetic" in _text(page) or "xmodal" in page.parts, page.name


def test_commands_name_this_builds_profile_and_results_folder(html):
    for page in _generated(html):
        text = _text(page)
        assert set(re.findall(r"(?:--profile|-p profile) (\S+)", text)) <= {"smoke"}, page.name
        for folder in re.findall(r"(?:--out|-p results_dir) (\S+)", text):
            assert folder == "runs" or folder.startswith("runs/extensions/"), (page.name, folder)
        assert "runs/smoke" not in text and "runs/embedded" not in text, page.name
    for name in ("4_report_ablations", "5_report_beyond"):  # their commands are generated, not written
        assert "cti-command" in (html / f"runs/_book/report/{name}.html").read_text(), name
    for row in (html / "runs/_book/rows").glob("*/*.html"):
        if "FAILED" not in row.stem:
            assert re.search(r"cti-repro run [^<]* --force", row.read_text()), row.name  # reruns, not the cache


def test_beyond_table_names_extension_and_setting(html, browser):
    browser.open((html / "runs/_book/report/5_report_beyond.html").as_uri(), 1400)
    rows = browser.evaluate("[...document.querySelectorAll('#each-extension-against-the-paper-s-clip-ita table tr')]"
                            ".map(r => [...r.cells].map(c => c.innerText.trim()))")
    assert rows[0][:2] == ["extension", "setting"]
    assert rows[1][:2] == ["tree_margin", "most_specific"] and re.match(r"[+-]\d+\.\d\d", rows[1][2])


def test_sensitivity_page_lists_unrun_variants_with_command_and_cost(html):
    text = _text(html / "runs/_book/report/4_report_ablations.html")
    assert "cti-repro reproduce --profile smoke --config _config.yml --ablations similarity_dot" in text
    assert re.search(r"baselines_all_products\s.*?9 rows, ~\d+ min", text, re.S)
    assert "--ablations all" in text


def test_page_downloads_are_linked_and_keep_provenance(html):
    links = {"per_query.csv": "report/1_report_table1", "table1_comparison.csv": "report/1_report_table1",
             "sensitivity.csv": "report/4_report_ablations", "beyond.csv": "report/5_report_beyond",
             "xmodal.csv": "xmodal/0_report_xmodal"}
    for name, page in links.items():
        page = html / f"runs/_book/{page}.html"
        hrefs = re.findall(r'href="([^"]*/' + re.escape(name) + ')"', page.read_text())
        assert hrefs, (name, page)
        df = pd.read_csv((page.parent / hrefs[0]).resolve())
        if name == "xmodal.csv":  # the smoke book runs no text-image row: the header, with provenance
            assert {"model", "profile", "demonstration"} <= set(df.columns)
            continue
        assert len(df), name
        if name != "table1_comparison.csv":
            assert (df.profile == "smoke").all() and df.demonstration.all() and (df.data_source == "synthetic").all()
    assert "tau_0.1" in set(pd.read_csv(html / "_downloads" / next(
        p.parent.name for p in (html / "_downloads").rglob("sensitivity.csv")) / "sensitivity.csv").variant)
    downloads = {p.name: p for p in (html / "_downloads").rglob("*") if p.is_file()}
    per_seed = pd.read_csv(downloads["per_seed_metrics.csv"])
    assert {"profile", "data_source", "encoder_weights", "demonstration"} <= set(per_seed.columns)
    ok = per_seed[per_seed.status == "ok"]
    assert (ok.profile == "smoke").all() and ok.demonstration.all()
    assert ok[ok.model.str.startswith("CLIP")].encoder_weights.str.contains("image=random").all()
    conf = yaml.safe_load(downloads["config.yaml"].read_text())
    assert conf["ran"]["encoders"]["image"]["pretrained"] is False  # the weights that ran, not those asked for
    assert "RANDOM weights" in downloads["config.yaml"].read_text().splitlines()[0]


def test_table1_fits_800px_and_names_its_queries(html, smoke_study, browser):
    page = html / "runs/_book/report/1_report_table1.html"
    browser.open(page.as_uri(), 800)
    cut = browser.evaluate("""(() => { const art = document.querySelector('article').getBoundingClientRect();
        return [...document.querySelectorAll('table.cti-table1')].map(t => [t.scrollWidth - t.clientWidth,
            Math.round(t.getBoundingClientRect().right - art.right)]); })()""")
    assert len(cut) == 3 and all(over <= 1 and right <= 1 for over, right in cut), cut
    text = _text(page)
    for setting in ("all", "most_general", "most_specific"):
        q = len(__import__("cti_repro.results", fromlist=["read_result"]).read_result(
            smoke_study.cfg.path(smoke_study.cfg.results_dir) / setting / "BM25_seed0.json")["queries"])
        assert f"{q} test queries" in text, setting
    assert "bars: ± sd" not in text and "<results_dir>" not in text


def test_results_page_has_table1_at_a_glance_with_chance(html):
    text = _text(html / "results.html")
    assert "Table 1 at a glance" in text and "chance (random ranking)" in text
    assert re.search(r"Most general category \| chance \(random ranking\) \| — / \d+\.\d\d", text) or \
        re.search(r"chance \(random ranking\)\s+— / \d+\.\d\d", text)


def test_row_pages_say_first_run_cost_and_baselines_seed(html):
    row = next((html / "runs/_book/rows").glob("most_specific/*CLIP-I*.html"))
    assert "First run:" in _text(row)
    for setting in ("all", "most_general", "most_specific"):
        assert "have no seed" not in _text(html / f"rows_{setting}.html")
