"""``jupyter-book build book/`` on a fresh clone: the committed pages only, no run, no warning."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import yaml

from cti_repro.run.book import SOURCE_BOOK


def test_fresh_clone_book_builds(tmp_path):
    book = tmp_path / "book"
    shutil.copytree(SOURCE_BOOK, book, ignore=shutil.ignore_patterns("_build", "runs", "__pycache__"))
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    assert toc["root"] == "intro" and [p["caption"] for p in toc["parts"]] == ["Results", "Notes", "Table 1 rows", "Text-image retrieval",
                                                                                 "Fine-grained text-image retrieval"]
    exe = Path(sys.executable).with_name("jupyter-book")
    r = subprocess.run([str(exe) if exe.is_file() else "jupyter-book", "build", "-q", "-W", "-n", "--keep-going",
                        str(book)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    html = book / "_build" / "html"

    def text(page: str) -> str:
        return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", (html / page).read_text())))

    results = text("results.html")
    assert "No results have been built into this book yet" in results and "make reproduce" in results.replace("  ", " ")
    rows = text("rows_all.html")
    assert "cti-repro reproduce --profile embedded" in rows
    assert "Nothing has been built into this book yet" in text("intro.html")
    assert "cti-repro reproduce --profile embedded --study finegrained" in text("finegrained.html")
    assert "Kaleido patches" in text("finegrained_deviations.html")
