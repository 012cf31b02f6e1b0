"""The smoke study shared by the end-to-end tests (``tests/conftest.py`` builds it once per session).

On the smoke profile with every output folder in a temporary directory: all 18 rows in-process,
one sensitivity variant and one extension (:func:`run_variants`), one good row notebook, one failing row notebook and a baseline page with papermill, the data and
report notebooks, then ``jupyter-book build -W -n`` (~3 min on 2 cores). ``tests/run/test_batch.py``
checks the notebooks and the book, ``tests/report/test_book_overflow.py`` reads the book in
headless Chromium.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import yaml

REPO = Path(__file__).resolve().parents[1]


def smoke_config(base: Path) -> Path:
    """A copy of the repo's ``_config.yml`` whose smoke profile writes everything under ``base``."""
    raw = yaml.safe_load((REPO / "_config.yml").read_text())
    prof = raw["profiles"]["smoke"]
    prof.update(results_dir=str(base / "runs"), cache_dir=str(base / "cache"), book_dir=str(base / "book"))
    prof["data"] = {**prof.get("data", {}), "dir": str(base / "data")}
    path = base / "_config.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def make_study(base: Path) -> SimpleNamespace:
    from cti_repro.config import load_config
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.run import book

    config_path = smoke_config(base)
    cfg = load_config("smoke", config_path)
    catalogue = prepare_catalogue(cfg)
    return SimpleNamespace(base=base, config_path=config_path, cfg=cfg, fp=catalogue.fingerprint(),
                           layout=book.book_layout(cfg))


def compute_features(study: SimpleNamespace) -> Path:
    """Every default feature part of the study's catalogue (cached); returns the cache folder.

    Single-threaded, as :func:`run_all_rows` computed them before this fixture existed, so the
    smoke rows' numbers do not move.
    """
    import torch

    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.features import feature_cache_dir, load_features

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load_features(study.cfg, prepare_catalogue(study.cfg))
    finally:
        torch.set_num_threads(threads)
    return feature_cache_dir(study.cfg)


def seed_from_session(study: SimpleNamespace, features: Path, cfg) -> None:
    """Copy the session's smoke catalogue and feature cache (``features``) into ``cfg``'s folders.

    Copies, not links: tests that damage or extend their catalogue or cache touch only their own.
    The feature parts are keyed by the catalogue's content fingerprint (paths relative to its
    folder), so the copies are cache hits; a profile whose catalogue differs (other size or seed)
    regenerates it and computes its own features, as without the copies.
    """
    from cti_repro.features import feature_cache_dir

    shutil.copytree(study.cfg.data_dir, cfg.data_dir, dirs_exist_ok=True)
    shutil.copytree(features, feature_cache_dir(cfg), dirs_exist_ok=True)


def run_all_rows(study: SimpleNamespace) -> list:
    """All 18 rows in-process (features computed once, then cached), single-threaded like the
    batch's kernels (see ``cti_repro.run.notebooks.KERNEL_ENV``)."""
    import torch

    from cti_repro.run import batch
    from cti_repro.run.row import run_row

    tasks, threads = batch.plan_rows(study.cfg, study.fp, study.layout), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for t in tasks:
            run_row(t.setting, t.model, seed=t.seed, cfg=study.cfg, progress=False)
        run_variants(study)
    finally:
        torch.set_num_threads(threads)
    return tasks


def run_variants(study: SimpleNamespace) -> None:
    """One sensitivity variant (``tau_0.1``: CLIP-ITA, 3 settings) and one extension
    (``tree_margin``, most specific), so the sensitivity and beyond pages show real tables."""
    from cti_repro.run.ablations import run_ablations
    from cti_repro.run.extensions import run_extensions

    assert run_ablations("smoke", ["tau_0.1"], config_path=study.config_path) == []
    run_extensions(cfg=study.cfg, names=["tree_margin"])


def run_notebooks(study: SimpleNamespace, rows: list) -> SimpleNamespace:
    """One good row notebook (trained), a failing one, and a good baseline."""
    from cti_repro.results import result_path
    from cti_repro.run import batch

    good = next(t for t in rows if (t.setting, t.model) == ("most_specific", "CLIP-I"))
    baseline = next(t for t in rows if (t.setting, t.model) == ("all", "BM25"))
    results = study.cfg.path(study.cfg.results_dir).resolve()
    bad = batch.RowTask("all", "NoSuchModel", 0, result_path(results, "all", "NoSuchModel", 0),
                        study.layout.row_notebook("all", "NoSuchModel", 0))
    failed = batch.run_rows([good, bad, baseline], study.cfg, study.fp, study.layout, study.config_path, workers=2)
    return SimpleNamespace(good=good, bad=bad, baseline=baseline, failed=failed)


def build(study: SimpleNamespace, notebooks: SimpleNamespace) -> SimpleNamespace:
    """The data and report pages, a failed row page (CLIP-IA, all), then the strict book build."""
    from cti_repro.run import batch, book

    layout = study.layout
    problems = batch.execute_pages(study.cfg, study.fp, layout, study.config_path)
    shutil.copy(notebooks.bad.notebook.with_suffix(".failed.ipynb"),
                layout.row_notebook("all", "CLIP-IA", 0).with_suffix(".failed.ipynb"))
    code = book.build_book(layout, strict=True, cfg=study.cfg)  # jupyter-book build -W -n --keep-going
    return SimpleNamespace(problems=problems, code=code, html=layout.root / "_build" / "html")
