"""The book: where its pages are, staging the static pages, the table of contents, the build.

Executed notebooks live under ``<book_dir>/runs/<profile>/`` (git-ignored)::

    data.ipynb                                        the data set page
    rows/<setting>/<model>_seed<seed>.ipynb           one row of Table 1
    rows/<setting>/<model>_seed<seed>.failed.ipynb    a row that raised (with its traceback)
    report/report_*.ipynb                             the report pages
    logs/*.log                                        the kernels' stderr (a warm kernel's: kernel-<pid>.log)

The committed ``book/_toc.yml`` is the book's stable structure: index pages (``results.md``,
``rows_<setting>.md``) under which :func:`publish` hangs a copy of the profile built last
(``<book_dir>/runs/_book/``, git-ignored), so ``jupyter-book build book/`` works on a fresh clone
(the index pages then say which command produces their pages) and after any partial run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cti_repro.config import StudyConfig
from cti_repro.io_utils import naming_path
from cti_repro.run.notebooks import failed_path
from cti_repro.study import MODELS, SETTINGS, TRAINED

REPORTS: tuple[str, ...] = ("report_table1", "report_training", "report_analysis", "report_ablations", "report_beyond")
XMODAL_REPORTS: tuple[str, ...] = ("report_xmodal",)  # the text <-> image study's chapter


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
        """The executed notebook of one (model, seed) of the text <-> image study."""
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
        if p.name not in ("runs", "_build", "templates") and not p.name.startswith("."):
            if p.is_dir():
                shutil.copytree(p, layout.root / p.name, dirs_exist_ok=True)
            else:
                shutil.copy2(p, layout.root / p.name)


def _seed_of(p: Path) -> int:
    return int(p.name.split("_seed")[1].split(".")[0])


GENERATED = "runs/_book"  # the book's copy of the profile built last (git-ignored with runs/)
REPORT_TITLES = {"report_table1": "Table 1: published vs reproduced", "report_training": "Training curves and retrieved examples",
                 "report_analysis": "Analysis: error types, seen vs unseen, AP@k, significance",
                 "report_ablations": "Sensitivity to the paper's ambiguities", "report_beyond": "Beyond the paper",
                 "report_xmodal": "Text-image retrieval beside Rubio et al. (2017)"}


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)  # keeps the mtime: Sphinx re-reads only what changed


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        with naming_path(path):  # a full disk names the page
            path.write_text(text)


def publish(layout: BookLayout, cfg: StudyConfig | None = None, seeds: list[int] | None = None) -> bool:
    """Fill what the committed ``_toc.yml`` expects under ``<book>/runs/_book/``; True if the page set changed.

    The executed notebooks of ``layout.profile`` are copied to ``runs/_book/data.ipynb``,
    ``runs/_book/report/<n>_<name>.ipynb`` and ``runs/_book/rows/<setting>/<n>_<model>[_seed<s>].ipynb``
    (``n`` orders the sidebar; baselines carry no seed; a failed row's notebook when it has no
    successful one), and the index pages' parts are written to ``runs/_book/fragments/*.md``:
    what the build is, the headline claims, the pages (missing ones with their command), the rows
    of each setting, the downloads (``runs/_book/downloads/``).
    """
    from cti_repro.report import book_pages
    from cti_repro.report.tables import load_study, table1

    gen = layout.root / GENERATED
    before = sorted(p.relative_to(gen).as_posix() for p in gen.rglob("*.ipynb")) if gen.is_dir() else []
    for sub in ("report", "rows", "xmodal"):
        shutil.rmtree(gen / sub, ignore_errors=True)
    (gen / "data.ipynb").unlink(missing_ok=True)
    results_dir = cfg.path(cfg.results_dir).resolve() if cfg is not None else None
    records = load_study(results_dir) if results_dir is not None and results_dir.is_dir() else []
    seeds = list(seeds if seeds is not None else (cfg.seeds if cfg is not None else sorted(
        {_seed_of(p) for p in layout.runs.glob("rows/*/*_seed*.ipynb")}) or [0]))
    prof = f"--profile {layout.profile}"
    if layout.data_notebook.is_file():
        _copy(layout.data_notebook, gen / "data.ipynb")
    pages = []
    for i, name in enumerate(REPORTS, 1):
        src, doc = layout.report_notebook(name), f"{GENERATED}/report/{i}_{name}"
        if src.is_file():
            _copy(src, gen / "report" / f"{i}_{name}.ipynb")
        pages.append({"title": REPORT_TITLES.get(name, name), "doc": f"{doc}.ipynb" if src.is_file() else None,
                      "command": f"cti-repro report {prof}"})
    if layout.data_notebook.is_file():
        pages.append({"title": "Data set", "doc": f"{GENERATED}/data.ipynb"})
    else:
        pages.append({"title": "Data set", "doc": None, "command": f"cti-repro reproduce {prof}"})
    by_key = {(r.get("setting"), r.get("model"), r.get("seed")): r for r in records}
    frag = gen / "fragments"
    for setting in SETTINGS:
        rows = _publish_rows(gen, f"rows/{setting}", MODELS, TRAINED, seeds,
                             lambda m, s, setting=setting: layout.row_notebook(setting, m, s),
                             lambda m, s, setting=setting: by_key.get((setting, m, s)) or {},
                             f"cti-repro reproduce {prof} --seeds {{seed}}")
        _write_if_changed(frag / f"rows_{setting}.md", book_pages.rows_md(rows))
    from cti_repro.study import XMODAL_MODELS, XMODAL_TRAINED

    chapter = layout.report_notebook(XMODAL_REPORTS[0])
    if chapter.is_file():
        _copy(chapter, gen / "xmodal" / f"0_{XMODAL_REPORTS[0]}.ipynb")
    from cti_repro.results import load_xmodal_results

    have = results_dir is not None and results_dir.is_dir()
    xrecs = {(r.get("model"), r.get("seed")): r for r in (load_xmodal_results(results_dir) if have else [])}
    rows = _publish_rows(gen, "xmodal", XMODAL_MODELS, XMODAL_TRAINED, seeds, layout.xmodal_row_notebook,
                         lambda m, s: xrecs.get((m, s)) or {}, f"cti-repro reproduce {prof} --study xmodal --seeds {{seed}}")
    _write_if_changed(frag / "xmodal.md", book_pages.rows_md(rows, ("MedR%_t2i", "MedR%_i2t")))
    from cti_repro.report.finegrained.chapter import chapter_md
    from cti_repro.run.finegrained.row import load_finegrained_results

    _write_if_changed(frag / "finegrained.md", chapter_md(load_finegrained_results(results_dir) if have else [],
                                                          f"cti-repro reproduce {prof} --study finegrained"))
    t1 = table1(records)
    stages_path = results_dir / "build_stages.json" if results_dir is not None else None
    stages = json.loads(stages_path.read_text()) if stages_path is not None and stages_path.is_file() else {}
    files = book_pages.write_downloads(gen / "downloads", records, t1, cfg, stages)
    files.update(book_pages.write_page_downloads(gen / "downloads", records, results_dir))
    for name, text in {"build": book_pages.build_md(records, layout.profile, cfg),
                       "headline": book_pages.headline_md(t1, records), "table1": book_pages.table1_md(t1, records),
                       "pages": book_pages.pages_md(pages),
                       "downloads": book_pages.downloads_md(files, layout.root, records, stages)}.items():
        _write_if_changed(frag / f"{name}.md", text)
    after = sorted(p.relative_to(gen).as_posix() for p in gen.rglob("*.ipynb"))
    # Sphinx skips the HTML (static files included) when no page is outdated: a changed stylesheet
    # or extension must rebuild everything
    assets = "".join(f"{p.relative_to(layout.root)}:{p.stat().st_mtime_ns}\n" for d in ("_static", "_ext")
                     for p in sorted((layout.root / d).rglob("*")) if p.is_file() and "__pycache__" not in p.parts)
    stamp_file, assets_changed = gen / ".assets", False
    if not stamp_file.is_file() or stamp_file.read_text() != assets:
        stamp_file.write_text(assets)
        assets_changed = True
    return after != before or assets_changed


def _publish_rows(gen: Path, sub: str, models, trained_models, seeds: list[int], notebook, record, command: str
                  ) -> list[dict]:
    """Copy the row notebooks of ``models`` to ``runs/_book/<sub>/`` and return their index rows.

    ``notebook(model, seed)`` is the executed notebook, ``record(model, seed)`` the result record
    (its means go into the index; ``{}`` if none), ``command`` the command of a missing row
    (``{seed}`` filled in). Trained models have one page per seed, the others one page (no seed);
    ``<n>_`` orders the sidebar, and a failed row's notebook stands in when no successful one exists.
    """
    rows = []
    for i, model in enumerate(models, 1):
        trained = model in trained_models
        for seed in (seeds if trained else seeds[:1]):
            ok = notebook(model, seed)
            bad, rec = failed_path(ok), record(model, seed)
            stem = f"{i}_{model}" + (f"_seed{seed}" if trained else "")
            row = {"model": model, "seed": seed if trained else None, "means": rec.get("means") or {},
                   "command": command.format(seed=seed)}
            if ok.is_file():
                _copy(ok, gen / sub / f"{stem}.ipynb")
                row.update(status="ok", doc=f"{GENERATED}/{sub}/{stem}.ipynb")
            elif bad.is_file():
                _copy(bad, gen / sub / f"{stem}_FAILED.ipynb")
                row.update(status="FAILED", doc=f"{GENERATED}/{sub}/{stem}_FAILED.ipynb", means={})
            else:
                row.update(status="result only, no page" if rec.get("status") == "ok" else "not run")
            rows.append(row)
    return rows


def build_book(layout: BookLayout, seeds: list[int] | None = None, strict: bool = False,
               cfg: StudyConfig | None = None) -> int:
    """Stage the static pages, :func:`publish` the build and run this environment's ``jupyter-book build``.

    Args:
        layout: the book.
        seeds: list only these seeds' row notebooks (default: the profile's).
        strict: ``-W -n --keep-going``: any warning fails the build.
        cfg: the profile (its results feed the index pages, headline and downloads).

    Returns:
        jupyter-book's exit code.
    """
    stage_book(layout)
    changed = publish(layout, cfg, seeds)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else (shutil.which("jupyter-book") or "jupyter-book"), "build", "-q"]
    cmd += ["--all"] if changed else []  # a new page set changes every page's sidebar
    cmd += ["-W", "-n", "--keep-going"] if strict else []
    return subprocess.run([*cmd, str(layout.root)], check=False).returncode


__all__ = ["BookLayout", "book_layout", "stage_book", "publish", "GENERATED", "build_book", "REPORTS", "XMODAL_REPORTS",
           "SOURCE_BOOK"]
