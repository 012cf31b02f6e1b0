"""Independent rows in spawned, single-threaded worker processes (the ablations and extensions).

Each row is a top-level function returning ``(error text or None, seconds)``; rows do not share
state, so the results do not depend on how many run at once. Workers are single-threaded
(:data:`cti_repro.run.notebooks.KERNEL_ENV`), as the row kernels, so ``workers`` rows use
``workers`` cores; ``spawn`` gives each a fresh interpreter (no forked torch thread pools).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

Row = Callable[..., tuple[str | None, float]]


def run_in_workers(fn: Row, jobs: Sequence[tuple[Any, tuple]], workers: int,
                   done: Callable[[int, Any, tuple, str | None, float], None]) -> None:
    """Call ``fn(*args)`` for every ``(label, args)`` of ``jobs``, ``workers`` at once.

    ``done(i, label, args, error, seconds)`` is called in this process as each row finishes
    (``i`` counts from 1 in completion order). With ``workers <= 1`` (or one job) the rows run
    here, in order, with this process's threads.
    """
    if workers <= 1 or len(jobs) <= 1:
        for i, (label, args) in enumerate(jobs, 1):
            done(i, label, args, *fn(*args))
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from cti_repro.run.notebooks import KERNEL_ENV

    added = {k: v for k, v in KERNEL_ENV.items() if k not in os.environ}  # inherited by the spawned workers
    os.environ.update(added)
    try:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(fn, *args): (label, args) for label, args in jobs}
            for i, fut in enumerate(as_completed(futures), 1):
                done(i, *futures[fut], *fut.result())
    finally:
        for k in added:
            os.environ.pop(k, None)


__all__ = ["run_in_workers"]
