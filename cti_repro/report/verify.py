"""Two-click verification of our own numbers, and the README's table generated from the results.

The embedded and smoke profiles are deterministic, so their per-run means are committed as
expected numbers (``cti_repro/resources/expected/<profile>.json``, written by ``cti-repro verify
--write``, never by hand, and only from a complete plan); ``cti-repro verify`` compares a user's
results with them cell by cell (every setting, model, seed and metric the profile plans: a cell
without a result or without an expected number fails) at :data:`TOLERANCE` points. pyserini's "two-click
reproduction" idea, applied to this package.

Example:
    >>> from cti_repro.report import verify
    >>> table = verify.verify_results("runs/smoke", verify.expected_path("smoke"))
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cti_repro.io_utils import atomic_write_json
from cti_repro.report.common import ok_records, study_order
from cti_repro.results import load_results
from cti_repro.study import METRICS, SETTING_LABELS, table1_rows

EXPECTED_DIR = Path(__file__).resolve().parent.parent / "resources" / "expected"
# Points (percent). Measured: the 18 smoke rows (108 cells) computed with torch at 1 and at 2
# threads, features recomputed in separate caches, agree exactly (features bit-identical, largest
# difference of a mean 0.0). The tolerance is therefore the printed precision, 0.01 points: a
# different CPU type or BLAS build that flips one query's ranking moves a cell by a whole query
# (>= 100 / n_queries points), far outside it, and verify names that cell.
MEASURED_THREAD_DRIFT = 0.0
TOLERANCE = 0.01


def expected_path(profile: str) -> Path:
    """The committed expected numbers of ``profile``."""
    return EXPECTED_DIR / f"{profile}.json"


def _cells(records: list[dict]) -> dict[str, float]:
    """``{"setting/model/seed/metric": mean}`` of the successful records."""
    return {f"{r['setting']}/{r['model']}/{r.get('seed', 0)}/{m}": float(v)
            for r in ok_records(records) for m, v in (r.get("means") or {}).items() if m in METRICS}


def planned_cells(seeds: list[int] | tuple[int, ...]) -> list[str]:
    """Every ``setting/model/seed/metric`` cell of Table 1 that ``cti-repro reproduce`` plans for ``seeds``."""
    return [f"{s}/{m}/{seed}/{metric}" for s, m, seed in table1_rows(seeds) for metric in METRICS]


def _missing_rows(cells: list[str]) -> str:
    """``"all CLIP-I seed 0, ..."``: the rows of some cells, the first few and a count."""
    rows = list(dict.fromkeys(" ".join(c.split("/")[:2]) + f" seed {c.split('/')[2]}" for c in cells))
    return ", ".join(rows[:4]) + (f" and {len(rows) - 4} more" if len(rows) > 4 else "")


def write_expected(results_dir: str | Path, path: str | Path, profile: str, plan: list[str] | None = None) -> Path:
    """Write the expected numbers of ``profile`` from the results under ``results_dir``.

    Args:
        plan: the cells the profile must have (:func:`planned_cells`); every one needs a successful
            result and only these are written. None: whatever successful results exist.

    Raises:
        ValueError: there is no successful result to record, or a planned cell has none (the file
            would make a later ``verify`` pass on a partial study).
    """
    records = load_results(results_dir)
    cells = _cells(records)
    if not cells:
        raise ValueError(f"{results_dir}: no successful results to record as expected numbers")
    if plan is not None:
        missing = [c for c in plan if c not in cells]
        if missing:
            raise ValueError(f"{results_dir}: only {len(plan) - len(missing)} of the profile's {len(plan)} planned cells "
                             f"have a successful result (missing: {_missing_rows(missing)}); run `cti-repro reproduce "
                             f"--profile {profile}` until every row is ok, then write the expected numbers")
        cells = {c: cells[c] for c in plan}
    ok = ok_records(records)
    meta = {"profile": profile, "written_by": "cti-repro verify --write",
            "git_commits": sorted({r.get("git_commit", "?") for r in ok}),
            "config_hashes": sorted({r.get("config_hash", "?") for r in ok}),
            "data_fingerprints": sorted({r.get("data_fingerprint", "?") for r in ok}),
            "hardware": sorted({json.dumps(r.get("device") or {}, sort_keys=True) for r in ok}),
            "tolerance_points": TOLERANCE}
    return atomic_write_json(Path(path), {**meta, "cells": dict(sorted(cells.items()))})


def read_expected(path: str | Path) -> dict[str, float]:
    """The ``cells`` of an expected-numbers file, each key and value checked.

    Raises:
        FileNotFoundError: no such file (write one with ``cti-repro verify --write``).
        ValueError: not JSON, no ``cells`` mapping, a key that is not ``setting/model/seed/metric``
            or a value that is not a finite number; names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no expected numbers (write them with `cti-repro verify --write`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not an expected-numbers file ({exc})") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, dict):
        raise ValueError(f"{path}: not an expected-numbers file (needs a 'cells' mapping of "
                         f"setting/model/seed/metric to a number, got {type(cells).__name__})")
    out: dict[str, float] = {}
    for key, value in cells.items():
        parts = str(key).split("/")
        if len(parts) != 4 or not parts[2].isdigit() or not all(parts):
            raise ValueError(f"{path}: cells[{str(key)[:120]!r}]: key must be setting/model/seed/metric "
                             "(seed an integer)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{path}: cells[{key!r}]: expected a finite number, got {str(value)[:80]!r}")
        out[str(key)] = float(value)
    return out


def verify_results(results_dir: str | Path, expected: str | Path, tolerance: float = TOLERANCE,
                   plan: list[str] | None = None) -> pd.DataFrame:
    """Compare the results under ``results_dir`` with an expected-numbers file, cell by cell.

    Args:
        plan: the cells the profile must have (:func:`planned_cells`): each one the file lacks is a
            row with status ``NOT EXPECTED`` (a trimmed or partial file cannot pass). None: the
            file's cells only.

    Returns:
        Columns ``setting, model, seed, metric, expected, got, diff, status``; ``status`` is ``OK``
        (``|got - expected| <= tolerance``), ``FAIL``, ``MISSING`` (no successful result) or
        ``NOT EXPECTED`` (a planned cell the file has no number for).

    Raises:
        FileNotFoundError: no expected-numbers file (write one with ``cti-repro verify --write``).
        ValueError: the file is not an expected-numbers file (names the file and the key).
    """
    want = read_expected(expected)
    got = _cells(load_results(results_dir))
    rows = []
    for key in [*want, *(c for c in plan or () if c not in want)]:
        setting, model, seed, metric = key.split("/")
        e, g = want.get(key, math.nan), got.get(key, math.nan)
        d = g - e
        status = ("NOT EXPECTED" if key not in want else "MISSING" if not np.isfinite(g)
                  else "OK" if abs(d) <= tolerance + 1e-12 else "FAIL")
        rows.append({"setting": setting, "model": model, "seed": int(seed), "metric": metric, "expected": e,
                     "got": g, "diff": d, "status": status})
    return pd.DataFrame(rows, columns=["setting", "model", "seed", "metric", "expected", "got", "diff", "status"])


def readme_table(results_dir: str | Path) -> str:
    """Table 1 of the results as Markdown (mean ± sd over seeds), with the commit and machine that produced it."""
    from cti_repro.report.tables import table1

    records = load_results(results_dir)
    ok = ok_records(records)
    if not ok:
        raise ValueError(f"{results_dir}: no successful results")
    t1 = table1(records)
    t1 = t1[t1.status == "ok"]
    lines = ["| Setting | Model | " + " | ".join(METRICS) + " |", "|---|---|" + "---:|" * len(METRICS)]
    for setting, model in study_order(zip(t1.setting, t1.model)):
        g = t1[(t1.setting == setting) & (t1.model == model)].set_index("metric")
        cells = [f"{g.loc[m, 'mean']:.2f}" + (f" ± {g.loc[m, 'sd']:.2f}" if np.isfinite(g.loc[m, "sd"]) else "")
                 for m in METRICS]
        lines.append(f"| {SETTING_LABELS.get(setting, setting)} | {model} | " + " | ".join(cells) + " |")
    commits = sorted({r.get("git_commit", "?") for r in ok})
    dev: dict[str, Any] = (ok[0].get("device") or {})
    machine = f"{dev.get('device', '?')}: {dev.get('gpu') or dev.get('processor', '?')}, {dev.get('cpu_count', '?')} CPU cores"
    seeds = sorted({r.get("seed", 0) for r in ok})
    return _block(results_dir, "", f"commit {', '.join(commits)}; {machine}; seeds {', '.join(map(str, seeds))}; "
                  "mean ± sd over seeds, percent", lines)


def _block(results_dir: str | Path, file: str, about: str, lines: list[str]) -> str:
    """A generated README block: where it came from (the folder relative to here if below it), then the lines."""
    shown = Path(results_dir)
    with contextlib.suppress(ValueError):
        shown = shown.resolve().relative_to(Path.cwd().resolve())
    return f"Generated by `cti-repro readme-table` from `{shown}{file}` ({about}).\n\n" + "\n".join(lines) + "\n"


# The stages of `cti-repro reproduce` that make Table 1 (the rest: the text-image study, the
# sensitivity study and the extensions); the report notebooks and the book serve both.
TABLE1_STAGES = ("data", "features", "data notebook", "rows", "report notebooks", "book")


def readme_stage_times(results_dir: str | Path) -> str:
    """The stage times of the last ``cti-repro reproduce`` into ``results_dir`` (its
    ``build_stages.json``) as Markdown: each stage, its load average, the Table 1 part and the total."""
    import json

    from cti_repro.run.stages import fmt_duration

    path = Path(results_dir) / "build_stages.json"
    try:
        data = json.loads(path.read_text())
        stages = data["stages"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: no stage times ({exc})") from exc
    lines = ["| stage | time | load average (1 min) at its end |", "|---|---:|---:|"]
    for name, st in stages.items():
        load = st.get("load_avg_1m")
        detail = f" ({st['detail']})" if st.get("detail") else ""
        lines.append(f"| {name}{detail} | {fmt_duration(st['seconds'])} | {'' if load is None else f'{load:.1f}'} |")
    part = sum(st["seconds"] for name, st in stages.items() if name in TABLE1_STAGES)
    total = sum(st["seconds"] for st in stages.values())
    lines.append(f"| **Table 1 part** ({', '.join(n for n in TABLE1_STAGES if n in stages)}) | **{fmt_duration(part)}** | |")
    lines.append(f"| **total** | **{fmt_duration(total)}** | |")
    return _block(results_dir, "/build_stages.json",
                  f"commit {data.get('git_commit', '?')}; {data.get('cpu_count', '?')} CPU cores", lines)


README_MARKERS = ("<!-- readme-table: generated by `cti-repro readme-table --write README.md`, do not edit -->",
                  "<!-- /readme-table -->")


STAGE_MARKERS = ("<!-- readme-stages: generated by `cti-repro readme-table --write README.md`, do not edit -->",
                 "<!-- /readme-stages -->")


def write_readme_table(readme: str | Path, table: str, markers: tuple[str, str] = README_MARKERS) -> Path:
    """Replace the text between ``markers`` (default :data:`README_MARKERS`) in ``readme`` with
    ``table`` (atomically).

    Raises:
        ValueError: the file does not hold both markers, in order.
    """
    from cti_repro.io_utils import atomic_write_text

    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    start, end = markers
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{path}: no '{start}' ... '{end}' block to fill")
    atomic_write_text(path, text[: i + len(start)] + "\n" + table + text[j:])
    return path


__all__ = ["verify_results", "write_expected", "read_expected", "planned_cells", "expected_path", "readme_table", "write_readme_table", "README_MARKERS",
           "readme_stage_times", "STAGE_MARKERS", "TABLE1_STAGES",
           "TOLERANCE",
           "MEASURED_THREAD_DRIFT", "EXPECTED_DIR"]
