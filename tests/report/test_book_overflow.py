"""The smoke book as its readers see it, in headless Chromium (Debian's ``chromium``).

Every page at 1400 px and 800 px: no table, ``pre`` block or figure runs past its box or the
article column unless it scrolls inside its own container (``book/_static/cti.css``); each row
page's commands match the page's own parameters; the downloads exist and parse. Skipped when
chromium is not installed (``.ci/run`` installs it). Uses the session's smoke book
(``tests/smoke.py``), built once for this and ``tests/run/test_batch.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from cti_repro.report.commands import row_commands
from tests.report import book_checks as bc
from tests.report.cdp import overflow_js

pytestmark = pytest.mark.slow
WIDTHS = (1400, 800)


def _pages(html: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "index.html"}  # index.html only redirects
    return sorted(p for p in html.rglob("*.html") if p.name not in skip and "_static" not in p.parts
                  and "_sources" not in p.parts)


@pytest.fixture(scope="module")
def browser():
    yield from bc.chromium_session()


def test_no_page_overflows(smoke_book, browser):
    assert smoke_book.code == 0
    pages, problems = _pages(smoke_book.html), {}
    assert len(pages) >= 12
    for width in WIDTHS:
        for page in pages:
            browser.open(page.as_uri(), width)
            found = browser.evaluate(overflow_js(fit=width >= 1400))  # 800 px: scrolling in its box is fine
            if found:
                problems[f"{page.relative_to(smoke_book.html)} @ {width}px"] = found[:3]
    assert not problems, json.dumps(problems, indent=1)[:3000]


def test_overflow_check_can_fail(smoke_book, browser, tmp_path):
    # the same check on a page whose wide table is clipped (the theme's overflow: hidden)
    page = tmp_path / "clipped.html"
    cells = "".join(f"<td>column {i} with a long value</td>" for i in range(40))
    page.write_text(f"<html><body><main style='width:700px;overflow:hidden'><table><tr>{cells}</tr></table>"
                    "</main></body></html>")
    browser.open(page.as_uri(), 800)
    assert browser.evaluate(overflow_js(fit=False))


def test_row_page_commands_match_their_parameters(smoke_book, smoke_study, browser):
    rows = sorted((smoke_book.html / "runs" / "_book" / "rows").glob("*/*.html"))
    good = [p for p in rows if "FAILED" not in p.stem]
    assert len(good) >= 2
    for page in good:
        setting = page.parent.name
        m = re.fullmatch(r"\d+_(?P<model>[A-Za-z0-9-]+?)(?:_seed(?P<seed>\d+))?", page.stem)
        model, seed = m["model"], int(m["seed"] or 0)
        browser.open(page.as_uri(), 1400)
        shown = dict(browser.evaluate(
            "[...document.querySelectorAll('pre.cti-command')].map(p => [p.dataset.kind, p.innerText.trim()])"))
        nb = nbformat.read(smoke_study.layout.root / "runs" / "_book" / "rows" / setting / f"{page.stem}.ipynb", as_version=4)
        params = nb.metadata["papermill"]["parameters"]
        assert (params["setting"], params["model"], int(params["seed"])) == (setting, model, seed)
        expected = row_commands(setting, model, params["profile"], seed, params["results_dir"], params["config_path"],
                                root=Path(smoke_study.cfg.root))
        assert shown == expected, page
        assert f"--setting {setting} --model {model} --profile smoke --seed {seed}" in shown["cti-repro"]
        for k in ("setting", "model", "profile", "seed"):
            assert f"-p {k} {params[k]}" in shown["papermill"]


def test_downloads_exist_and_parse(smoke_book, browser):
    results = smoke_book.html / "results.html"
    browser.open(results.as_uri(), 1400)
    links = browser.evaluate("[...document.querySelectorAll('a.download')].map(a => a.href)")
    files = {Path(u.removeprefix("file://")).name: Path(u.removeprefix("file://")) for u in links}
    assert set(files) >= {"table1_comparison.csv", "per_seed_metrics.csv", "config.yaml", "environment.csv",
                          "build_stages.json"}
    t1 = pd.read_csv(files["table1_comparison.csv"])
    assert {"setting", "model", "metric", "published", "mean", "verdict"} <= set(t1.columns)
    assert len(t1.dropna(subset=["published"])) == 18 * 6  # every published cell (+ the fixture's failed row)
    per_seed = pd.read_csv(files["per_seed_metrics.csv"])
    assert len(per_seed) >= 18 and {"seed", "P@1", "R-precision"} <= set(per_seed.columns)
    conf = yaml.safe_load(files["config.yaml"].read_text())
    assert conf["profile"] == "smoke" and conf["train"]["epochs"] == 3
    env = pd.read_csv(files["environment.csv"]).set_index("item")["value"]
    assert env["python"].count(".") == 2 and "torch" in env.index and "git commit" in env.index
    assert isinstance(json.loads(files["build_stages.json"].read_text()), dict)
    # the headline: one row per claim, one verdict per setting, computed from the data
    cells = browser.evaluate("[...document.querySelectorAll('#headline-the-paper-s-claims-in-this-build tbody tr')]"
                             ".map(r => [...r.cells].map(c => c.innerText.trim()))")
    from cti_repro.report.claims import CLAIMS

    assert [c[0] for c in cells] == [c.name for c in CLAIMS]
    # blank where the paper makes no such claim in that setting
    assert all(re.fullmatch(r"(holds|partly|fails) \d/6 \(paper \d/6\)|not run — \(paper \d/6\)|", v)
               for c in cells for v in c[1:]), cells


def test_screenshots(smoke_book, browser):
    out = smoke_book.html.parent / "screenshots"
    row = next(p for p in (smoke_book.html / "runs" / "_book" / "rows").glob("*/*.html") if "FAILED" not in p.stem)
    for name, page in {"landing": smoke_book.html / "intro.html", "results": smoke_book.html / "results.html",
                       "row": row}.items():
        for width in WIDTHS:
            browser.open(page.as_uri(), width)
            png = browser.screenshot(out / f"{name}_{width}.png")
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
