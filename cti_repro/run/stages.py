"""Timing the stages of a batch (data, features, rows, report, book), printed and saved for the book,
and the order its rows are sent in."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cti_repro.config import StudyConfig
from cti_repro.study import TRAINED


def fmt_duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not on every platform
        return None


class _Stages(dict):
    """Stage name -> seconds; ``with stages(name):`` times and prints a stage.

    With ``path`` each finished stage is also merged into that JSON file (the book's stage-time
    download): ``{"stages": {"rows": {"seconds", "detail", "finished_at"}, ...}}``; stages of an
    earlier build that this one did not run keep their entry.
    """

    path: Path | None = None
    commit: str | None = None

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[name] = time.perf_counter() - t0
            print(f"== {name}: {fmt_duration(self[name])}", flush=True)
            self._persist(name)

    def _persist(self, name: str) -> None:
        if self.path is None:
            return
        import json

        from cti_repro.io_utils import atomic_write_text

        key, _, detail = name.partition(" (")
        try:
            data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            data = {}
        data.setdefault("stages", {})[key] = {"seconds": round(self[name], 2), "detail": detail.rstrip(")"),
                                              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                              "load_avg_1m": _load_avg()}  # timings move with the load
        if self.commit is None:
            from cti_repro.results import git_commit

            self.commit = git_commit()
        data.update(git_commit=self.commit, cpu_count=os.cpu_count())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(data, indent=2))
        except OSError as err:  # timing is a by-product: never fail a build on it
            print(f"stage times not saved: {err}", flush=True)

    def summary(self) -> str:
        return ", ".join(f"{k} {fmt_duration(v)}" for k, v in self.items()) + f"; total {fmt_duration(sum(self.values()))}"



def stages_for(cfg: StudyConfig) -> _Stages:
    """A stage timer that also saves to ``<results_dir>/build_stages.json`` (the book's download)."""
    stages = _Stages()
    stages.path = cfg.path(cfg.results_dir).resolve() / "build_stages.json"
    return stages


def finish(stages: _Stages, problems: list[str]) -> None:
    """Print every problem of the batch, then the stage times."""
    for p in problems:
        print(f"FAILED: {p}", flush=True)
    print(f"stages: {stages.summary()}", flush=True)


def submission_order(tasks: list, row: Callable[[Any], tuple[str, str]] = lambda t: (t.setting, t.model)) -> list:
    """``tasks`` longest first (stable), so that no long row starts last and runs alone: trained
    most-general rows (batch size 8: ~3x the steps) first, then the other trained rows, then the
    baselines (seconds each). ``row(task)`` gives a task's (setting, model); results do not
    depend on the order."""
    def cost(t: Any) -> int:
        setting, model = row(t)
        return (model in TRAINED) + (model in TRAINED and setting == "most_general")

    return sorted(tasks, key=cost, reverse=True)


__all__ = ["fmt_duration", "stages_for", "finish", "submission_order"]
