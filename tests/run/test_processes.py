"""Worker pools of a batch (``cti_repro.run.processes``): one shared pool serves every stage inside it."""

from __future__ import annotations

import os
import time

from cti_repro.run.processes import active_pool, run_in_workers, shared_pool


def _pid(_: int) -> tuple[str, float]:
    time.sleep(0.2)  # long enough that both workers take jobs
    return str(os.getpid()), 0.0  # the "error" slot carries the worker's pid back


def _pids(n: int = 6) -> set[str]:
    seen: set[str] = set()
    run_in_workers(_pid, [(i, (i,)) for i in range(n)], 2, lambda i, label, args, pid, sec: seen.add(pid))
    return seen


def test_stages_inside_a_shared_pool_use_its_workers():
    with shared_pool(2):
        assert active_pool(2) is not None and active_pool(3) is None
        first, second = _pids(), _pids()
    assert active_pool(2) is None
    assert len(first) == 2 and second == first and str(os.getpid()) not in first  # the same two workers
    assert not (_pids() & first)  # outside it, a pool of its own (the shared one is gone)
