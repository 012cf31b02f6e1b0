"""Worker pools of a batch (``cti_repro.run.processes``): one shared pool serves every stage inside it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cti_repro.run.processes import active_pool, run_in_workers, shared_pool, timed


def _note_pid(path: str) -> None:
    time.sleep(0.2)  # long enough that both workers take jobs
    with open(path, "a") as fh:
        fh.write(f"{os.getpid()}\n")


def _pids(path: Path, n: int = 6) -> set[str]:
    path.unlink(missing_ok=True)
    errors = []
    run_in_workers(_note_pid, [(i, (str(path),)) for i in range(n)], 2, lambda i, label, args, err, sec: errors.append(err))
    assert errors == [None] * n
    return set(path.read_text().split())


def test_stages_inside_a_shared_pool_use_its_workers(tmp_path):
    with shared_pool(2):
        assert active_pool(2) is not None and active_pool(3) is None
        first, second = _pids(tmp_path / "a"), _pids(tmp_path / "b")
    assert active_pool(2) is None
    assert len(first) == 2 and second == first and str(os.getpid()) not in first  # the same two workers
    assert not (_pids(tmp_path / "c") & first)  # outside it, a pool of its own (the shared one is gone)


def test_timed_turns_an_exception_into_its_text():
    def boom() -> None:
        raise ValueError("no such file")

    err, sec = timed(boom)
    assert err == "ValueError: no such file" and sec >= 0
    assert timed(lambda: None)[0] is None
