"""Independent rows in spawned, single-threaded worker processes (the ablations, extensions, pages).

Each row is a top-level function that raises on failure; :func:`timed` turns a call into
``(error text or None, seconds)`` so one failed row does not stop the others. Rows do not share
state, so the results do not depend on how many run at once. Workers are single-threaded
(:data:`cti_repro.run.notebooks.KERNEL_ENV`), as the row kernels, so ``workers`` rows use
``workers`` cores; ``spawn`` gives each a fresh interpreter (no forked torch thread pools).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any, Callable, Sequence

def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str | None, float]:
    """``fn(*args, **kwargs)`` -> (error text or None, seconds); runs in a worker process too."""
    t0 = time.perf_counter()
    try:
        fn(*args, **kwargs)
        return None, time.perf_counter() - t0
    except Exception as exc:  # one row must not stop the others
        from cti_repro.run.notebooks import error_text

        return error_text(exc), time.perf_counter() - t0


def run_in_workers(fn: Callable[..., Any], jobs: Sequence[tuple[Any, tuple]], workers: int,
                   done: Callable[[int, Any, tuple, str | None, float], None]) -> None:
    """Call ``fn(*args)`` (through :func:`timed`) for every ``(label, args)`` of ``jobs``, ``workers`` at once.

    ``done(i, label, args, error, seconds)`` is called in this process as each row finishes
    (``i`` counts from 1 in completion order). With ``workers <= 1`` (or one job) the rows run
    here, in order, with this process's threads.
    """
    if workers <= 1 or len(jobs) <= 1:
        for i, (label, args) in enumerate(jobs, 1):
            done(i, label, args, *timed(fn, *args))
        return
    from concurrent.futures import as_completed

    with contextlib.ExitStack() as stack:
        pool = active_pool(workers) or stack.enter_context(worker_pool(min(workers, len(jobs))))
        futures = {pool.submit(timed, fn, *args): (label, args) for label, args in jobs}
        for i, fut in enumerate(as_completed(futures), 1):
            done(i, *futures[fut], *fut.result())


@contextlib.contextmanager
def worker_pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> Iterator[Any]:
    """A ``spawn`` process pool of ``workers`` single-threaded workers (:data:`KERNEL_ENV` in their
    environment), shut down on exit; on an exception (a Ctrl-C) its queued jobs are dropped at once."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from cti_repro.run.notebooks import KERNEL_ENV

    added = {k: v for k, v in KERNEL_ENV.items() if k not in os.environ}  # inherited by the spawned workers
    os.environ.update(added)
    try:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=initializer, initargs=initargs)
    finally:
        for k in added:
            os.environ.pop(k, None)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


_shared: tuple[Any, int] | None = None  # (pool, workers) inside shared_pool()


@contextlib.contextmanager
def shared_pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> Iterator[None]:
    """One :func:`worker_pool` for every parallel stage inside (a batch's rows, studies, ablations,
    extensions and pages): each stage of its own pool paid a spawn, the imports and, for notebooks,
    a kernel start per worker (~5 s on 2 cores). Stages that ask for ``workers`` workers use it
    (:func:`active_pool`); nothing is shared with ``workers <= 1`` or inside another one."""
    global _shared
    if workers <= 1 or _shared is not None:
        yield
        return
    with worker_pool(workers, initializer, initargs) as pool:
        _shared = (pool, workers)
        try:
            yield
        finally:
            _shared = None


def active_pool(workers: int) -> Any:
    """The :func:`shared_pool` if one of ``workers`` workers is active, else None."""
    return _shared[0] if _shared is not None and _shared[1] == workers else None


__all__ = ["timed", "run_in_workers", "worker_pool", "shared_pool", "active_pool"]
