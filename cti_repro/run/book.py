"""The book: where its pages are, staging the static pages, the table of contents, the build.

Executed notebooks live under ``<book_dir>/runs/<profile>/`` (git-ignored)::

    data.ipynb                                        the data set page
    rows/<setting>/<model>_seed<seed>.ipynb           one row of Table 1
    rows/<setting>/<model>_seed<seed>.failed.ipynb    a row that raised (with its traceback)
    report/report_*.ipynb                             the report pages
    logs/*.log                                        the kernels' stderr
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cti_repro.config import StudyConfig
from cti_repro.study import MODELS, SETTING_LABELS, SETTINGS

REPORTS: tuple[str, ...] = ("report_table1", "report_training", "report_analysis", "report_ablations", "report_beyond")
XMODAL_REPORTS: tuple[str, ...] = ("report_xmodal",)  # the text <-> image study's chapter
NOTES: tuple[str, ...] = ("deviations", "real_data", "performance", "references")  # then other top-level pages


SOURCE_BOOK = Path(__file__).resolve().parents[2] / "book"  # the book sources of this checkout


@dataclass(frozen=True)
class BookLayout:
    """Where the book's sources, executed notebooks and HTML are.

    Attributes:
        source: static pages (``intro.md``, ...), ``_config.yml`` and ``templates/``.
        root: the book that is built (the profile's ``book_dir``); the static pages are copied
            there when it is not ``source``.
        profile: the profile whose notebooks the table of contents lists.
        runs, templates, data_notebook, html_index: derived paths.
    """

    source: Path
    root: Path
    profile: str

    def __post_init__(self) -> None:
        derived = {"runs": self.root / "runs" / self.profile, "templates": self.source / "templates",
                   "data_notebook": self.root / "runs" / self.profile / "data.ipynb",
                   "html_index": self.root / "_build" / "html" / "index.html"}
        for k, v in derived.items():
            object.__setattr__(self, k, v)

    def row_notebook(self, setting: str, model: str, seed: int) -> Path:
        return self.runs / "rows" / setting / f"{model}_seed{seed}.ipynb"

    def report_notebook(self, name: str) -> Path:
        return self.runs / "report" / f"{name}.ipynb"

    def xmodal_row_notebook(self, model: str, seed: int) -> Path:
        return self.runs / "rows" / "xmodal" / f"{model}_seed{seed}.ipynb"


def book_layout(cfg: StudyConfig, source: str | Path | None = None) -> BookLayout:
    """The book of ``cfg``: built in its ``book_dir``, sources from there if it has templates."""
    root = cfg.path(cfg.book_dir).resolve()
    if source is None:
        source = root if (root / "templates").is_dir() else SOURCE_BOOK
    return BookLayout(Path(source).resolve(), root, cfg.profile)


def stage_book(layout: BookLayout) -> None:
    """Copy the static pages and ``_config.yml`` into the built book when it is not the source."""
    if layout.root == layout.source:
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    for p in layout.source.iterdir():
        if p.name not in ("runs", "_build", "templates", "_toc.yml") and not p.name.startswith("."):
            if p.is_dir():
                shutil.copytree(p, layout.root / p.name, dirs_exist_ok=True)
            else:
                shutil.copy2(p, layout.root / p.name)


def _seed_of(p: Path) -> int:
    return int(p.name.split("_seed")[1].split(".")[0])


def write_toc(layout: BookLayout, seeds: list[int] | None = None) -> bool:
    """Write ``_toc.yml`` (jb-book) listing the pages that exist; True if it changed.

    Parts: Data, Results (the report pages), one part per setting with its executed row
    notebooks (a failed row's notebook when it has no successful one), Notes (every other
    top-level page, :data:`NOTES` first).
    """
    import yaml

    def entry(p: Path, title: str | None = None) -> dict[str, str]:
        e = {"file": p.relative_to(layout.root).with_suffix("").as_posix()}
        return {**e, "title": title} if title else e

    parts = []
    if layout.data_notebook.is_file():
        parts.append({"caption": "Data", "chapters": [entry(layout.data_notebook)]})
    reports = [entry(layout.report_notebook(r)) for r in REPORTS if layout.report_notebook(r).is_file()]
    if reports:
        parts.append({"caption": "Results", "chapters": reports})
    for setting in SETTINGS:
        rows = []
        for model in MODELS:
            for p in sorted((layout.runs / "rows" / setting).glob(f"{model}_seed*.ipynb"), key=_seed_of):
                ok = p.with_name(f"{model}_seed{_seed_of(p)}.ipynb")
                if (seeds is None or _seed_of(p) in seeds) and (p == ok or not ok.is_file()):
                    rows.append(entry(p, f"{model}, seed {_seed_of(p)}" + ("" if p == ok else ": FAILED")))
        if rows:
            parts.append({"caption": f"Table 1 rows: {SETTING_LABELS[setting].lower()}", "chapters": rows})
    parts += _xmodal_parts(layout, seeds, entry)
    pages = {p.stem for p in layout.root.glob("*") if p.suffix in (".md", ".ipynb")} - {"intro"}
    notes = [{"file": n} for n in sorted(pages, key=lambda n: (NOTES.index(n) if n in NOTES else len(NOTES), n))]
    if notes:
        parts.append({"caption": "Notes", "chapters": notes})
    text = ("# Generated by cti_repro.run.batch.write_toc (cti-repro reproduce / report): do not edit.\n"
            + yaml.safe_dump({"format": "jb-book", "root": "intro", "parts": parts}, sort_keys=False))
    path = layout.root / "_toc.yml"
    changed = not path.is_file() or path.read_text() != text
    path.write_text(text)
    return changed


def _xmodal_parts(layout: BookLayout, seeds: list[int] | None, entry) -> list[dict]:
    """The text <-> image study's part: its chapter, then its row notebooks (a failed one when no success)."""
    from cti_repro.study import XMODAL_MODELS

    chapters = [entry(layout.report_notebook(r)) for r in XMODAL_REPORTS if layout.report_notebook(r).is_file()]
    for model in XMODAL_MODELS:
        for p in sorted((layout.runs / "rows" / "xmodal").glob(f"{model}_seed*.ipynb"), key=_seed_of):
            ok = p.with_name(f"{model}_seed{_seed_of(p)}.ipynb")
            if (seeds is None or _seed_of(p) in seeds) and (p == ok or not ok.is_file()):
                chapters.append(entry(p, f"{model}, seed {_seed_of(p)}" + ("" if p == ok else ": FAILED")))
    return [{"caption": "Text-image retrieval (Rubio et al. 2017)", "chapters": chapters}] if chapters else []


def build_book(layout: BookLayout, seeds: list[int] | None = None, strict: bool = False) -> int:
    """Stage the static pages, write ``_toc.yml`` and run this environment's ``jupyter-book build``.

    Args:
        layout: the book.
        seeds: list only these seeds' row notebooks (default: every one there is).
        strict: ``-W -n --keep-going``: any warning fails the build.

    Returns:
        jupyter-book's exit code.
    """
    stage_book(layout)
    changed = write_toc(layout, seeds)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else (shutil.which("jupyter-book") or "jupyter-book"), "build", "-q"]
    cmd += ["--all"] if changed else []  # a new toc changes every page's sidebar
    cmd += ["-W", "-n", "--keep-going"] if strict else []
    return subprocess.run([*cmd, str(layout.root)], check=False).returncode


__all__ = ["BookLayout", "book_layout", "stage_book", "write_toc", "build_book", "REPORTS", "XMODAL_REPORTS", "NOTES",
           "SOURCE_BOOK"]
