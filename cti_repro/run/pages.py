"""The book's pages of a batch: the data and report notebooks, the data files, the book build."""

from __future__ import annotations

from pathlib import Path

from cti_repro.config import StudyConfig
from cti_repro.run.book import REPORTS, XMODAL_REPORTS, BookLayout, build_book
from cti_repro.run.notebooks import error_text, execute, notebook_is_current, stamp
from cti_repro.run.warm_kernel import warm_kernels
from cti_repro.run.stages import _Stages


def execute_pages(
    cfg: StudyConfig, fingerprint: str, layout: BookLayout, config_path: Path, data: bool = True,
    reports: bool = True, force: bool = False, stages: _Stages | None = None, study: str = "both",
    workers: int = 1,
) -> list[str]:
    """Execute the data notebook (if ``data``, unless current) and the report notebooks (if ``reports``).

    ``study`` (``cti``, ``xmodal`` or ``both``) picks the report pages: Table 1's, the text-image chapter's, or all.
    ``workers`` > 1 runs the report notebooks that many at once, each worker process with its own warm
    kernel (:func:`_page_in_worker`); the pages read results only, so they do not depend on it.

    Returns:
        One line per page that failed (a missing template included).
    """
    stages, problems, todo = _Stages() if stages is None else stages, [], {}
    conf = {"profile": cfg.profile, "config_path": str(config_path)}
    if data and (force or not notebook_is_current(layout.data_notebook,
                                                  stamp(cfg, fingerprint, layout.templates / "data.ipynb"))):
        todo["data notebook"] = [("data", layout.data_notebook, conf)]
    if reports:
        params = {**conf, "results_dir": str(cfg.path(cfg.results_dir).resolve())}
        names = (REPORTS if study in ("cti", "both") else ()) + (XMODAL_REPORTS if study in ("xmodal", "both") else ())
        todo["report notebooks"] = [(r, layout.report_notebook(r), params) for r in names]
    for stage, jobs in todo.items():
        args = [(name, (layout.templates / f"{name}.ipynb", out, params,
                        stamp(cfg, fingerprint, layout.templates / f"{name}.ipynb"), Path(cfg.root).resolve(),
                        layout.runs / "logs" / f"{name}.log")) for name, out, params in jobs]
        if workers > 1 and len(jobs) > 1:
            from cti_repro.run.processes import run_in_workers

            def done(i: int, name: str, a: tuple, err: str | None, sec: float) -> None:
                if err is not None:
                    problems.append(f"{name}: {err} (see {a[1].with_suffix('.failed.ipynb')})")

            with stages(stage):
                run_in_workers(_page_in_worker, args, workers, done)
            continue
        with stages(stage), warm_kernels():  # one kernel for the pages (its imports paid once)
            for name, (template, out, params, meta, cwd, log) in args:
                try:
                    execute(template, out, params, meta, cwd, log=log, hide_parameters=True)
                except Exception as exc:
                    problems.append(f"{name}: {error_text(exc)} (see {out.with_suffix('.failed.ipynb')})")
    return problems


def _page_in_worker(template: Path, out: Path, params: dict, meta: dict, cwd: Path, log: Path) -> None:
    """One page in a worker process of :func:`execute_pages`. The worker keeps one warm kernel for
    the pages it is given (a kernel start and the imports per worker, not per page)."""
    from cti_repro.run.warm_kernel import keep_for_process

    keep_for_process()
    execute(template, out, params, meta, cwd, log=log, hide_parameters=True)


def write_data_files(cfg: StudyConfig) -> list[str]:
    """``<results_dir>/comparison.csv`` and ``per_query.parquet`` (:func:`cti_repro.report.tables.write_comparison`);
    returns a problem line if they could not be written."""
    from cti_repro.report.tables import load_study, write_comparison

    results_dir = cfg.path(cfg.results_dir).resolve()
    try:
        csv, pq = write_comparison(load_study(results_dir), results_dir)
    except Exception as exc:  # the book must still build
        return [f"comparison.csv: {type(exc).__name__}: {exc}"]
    print(f"comparison: {csv}, {pq}", flush=True)
    return []



def build_pages(layout: BookLayout, stages: _Stages, seeds: list[int] | None, cfg: StudyConfig | None = None) -> bool:
    """Build the book as the ``book`` stage; print where the HTML is. True if jupyter-book succeeded."""
    with stages("book"):
        code = build_book(layout, seeds, cfg=cfg)
    print(f"HTML: file://{layout.html_index}" if code == 0 else f"jupyter-book build failed (exit {code})",
          flush=True)
    return code == 0



__all__ = ["execute_pages", "write_data_files", "build_pages"]
