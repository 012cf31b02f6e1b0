"""Checks of a built book's HTML that need no browser (tests only): internal links, page weights,
the build machine's paths; and :func:`chromium_session`, the browser the layout checks share.

Used by ``tests/report/test_book_pages.py`` and ``test_book_overflow.py`` on the session's smoke book.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.report.cdp import Browser, chromium_binary

PAGE_WEIGHT_LIMIT = 1_000_000  # bytes: a page's HTML plus every image it shows (the book's stated bound)
SKIP_PAGES = {"genindex.html", "search.html"}


def chromium_session() -> Iterator[Browser]:
    """One headless Chromium for a test module (the body of its ``browser`` fixture: ``yield from``);
    skips the tests that use it where chromium is not installed (``.ci/run`` installs it)."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    with Browser(binary) as b:
        yield b


class _Refs(HTMLParser):
    """Every ``href`` / ``src`` of a page, and every ``id`` / ``name`` it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(str(a[key]))
        for key in ("href", "src"):
            if a.get(key):
                self.refs.append((tag, key, str(a[key])))
        if tag == "img":
            self.images.append(a)


def parse(page: Path) -> _Refs:
    p = _Refs()
    p.feed(page.read_text(encoding="utf-8", errors="replace"))
    return p


def pages(html: Path) -> list[Path]:
    """The book's pages (not Sphinx's own index and search pages, nor the sources)."""
    return sorted(p for p in html.rglob("*.html") if p.name not in SKIP_PAGES
                  and not {"_static", "_sources"} & set(p.relative_to(html).parts))


def broken_links(html: Path, anchors_pending: tuple[str, ...] = ()) -> list[str]:
    """Every internal link or resource of the book that does not resolve: a missing file (page,
    image, download, stylesheet) or a ``#fragment`` that its target page does not define.

    External links (``http(s)``, ``mailto``) are not fetched. ``anchors_pending`` lists target
    pages (relative to ``html``) whose fragments are not checked: anchors that another change adds.
    """
    ids: dict[Path, set[str]] = {}
    problems = []
    for page in pages(html):
        parsed = parse(page)
        ids[page.resolve()] = parsed.ids
        for tag, attr, value in parsed.refs:
            url = urlsplit(value)
            if url.scheme in ("http", "https", "mailto", "data", "javascript") or url.netloc:
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page.resolve()
            where = f"{page.relative_to(html)}: <{tag} {attr}={value!r}>"
            if not target.exists():
                problems.append(f"{where}: no such file")
                continue
            if target.is_dir():
                target = target / "index.html"
            if url.fragment and target.suffix == ".html":
                rel = target.relative_to(html.resolve()).as_posix() if target.is_relative_to(html.resolve()) else ""
                if rel in anchors_pending:
                    continue
                if target not in ids:
                    ids[target] = parse(target).ids
                if unquote(url.fragment) not in ids[target]:
                    problems.append(f"{where}: no anchor #{url.fragment} in {rel or target}")
    return problems


def page_weight(page: Path) -> int:
    """Bytes of a page's HTML plus every local image it shows (each counted once)."""
    total, seen = page.stat().st_size, set()
    for img in parse(page).images:
        src = urlsplit(str(img.get("src") or ""))
        if src.scheme or src.netloc or not src.path:
            continue
        f = (page.parent / unquote(src.path)).resolve()
        if f.is_file() and f not in seen:
            seen.add(f)
            total += f.stat().st_size
    return total


def absolute_paths(html: Path, roots: list[str]) -> list[str]:
    """Pages whose HTML contains one of ``roots`` (the build machine's folders), with the context."""
    found = []
    pattern = re.compile("|".join(re.escape(r.rstrip("/")) for r in roots))
    for page in pages(html):
        text = page.read_text(encoding="utf-8", errors="replace")
        m = pattern.search(text)
        if m:
            found.append(f"{page.relative_to(html)}: …{text[max(0, m.start() - 60):m.end() + 40]}…")
    return found


__all__ = ["PAGE_WEIGHT_LIMIT", "pages", "broken_links", "page_weight", "absolute_paths", "parse"]
