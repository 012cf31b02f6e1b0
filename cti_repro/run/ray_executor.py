"""Rows and feature shards as Ray tasks: ``cti-repro reproduce --executor ray [--address ADDR]``.

Ray (the optional ``[ray]`` extra) schedules; this module only maps our jobs onto Ray tasks.
Each job is ``fn(*args, **kwargs)`` (for a row: the same
:func:`cti_repro.run.notebooks.execute` call the local executor makes), so a Ray task writes the
same files, atomically, into the same ``results_dir``; on a cluster that folder (and the
repository) must be on a filesystem every node sees.

A job that raises, or whose worker process dies, is retried ``retries`` times by Ray
(``max_retries`` with ``retry_exceptions``) and then reported as failed to the caller's
``finished`` callback; the other jobs go on. Resuming is the caller's: the batch plans only the
rows that are not current on disk.

Example:
    >>> from cti_repro.run.batch import reproduce
    >>> reproduce("smoke", executor="ray")                    # a local Ray cluster, one CPU per row
    >>> reproduce("xmarket", executor="ray", address="auto")  # join the cluster started by `ray start`
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cti_repro.config import StudyConfig
from cti_repro.run.notebooks import error_text

EXECUTORS = ("local", "ray")
DEFAULT_RETRIES = 2


def ray_available() -> bool:
    """True if ``ray`` can be imported (``pip install -e .[ray]``)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _require_ray():
    try:
        import ray
    except ImportError as exc:
        raise ValueError("--executor ray needs Ray: pip install -e '.[ray]' (or pip install ray)") from exc
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration of the block; yields the ``ray`` module.

    Args:
        address: ``auto`` (the cluster this node belongs to, started by ``ray start``), a
            ``host:port`` / ``ray://host:port`` address, or None for a new local cluster.
        num_cpus: CPUs of a new local cluster (how many CPU tasks run at once); ignored with ``address``.

    A session that was already initialised (e.g. by a test fixture) is reused and left running;
    one started here is shut down at the end.
    """
    ray = _require_ray()
    if ray.is_initialized():
        yield ray
        return
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    try:
        yield ray
    finally:
        ray.shutdown()


def task_resources(cfg: StudyConfig, ray: Any, gpu_work: bool = True) -> dict[str, float]:
    """Ray resources of one task: a GPU when the profile runs on CUDA (``train.device: cuda``, or
    ``auto`` on a cluster that has GPUs) and ``gpu_work``, else one CPU."""
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    if cfg.train.device == "cuda" and gpu_work and cluster_gpus < 1:  # tasks would wait forever
        raise ValueError("train.device is 'cuda' but the Ray cluster has no GPU (ray start --num-gpus N)")
    cuda = cfg.train.device == "cuda" or (cfg.train.device == "auto" and cluster_gpus > 0)
    return {"num_cpus": 1, "num_gpus": 1} if cuda and gpu_work else {"num_cpus": 1}


def _attempt(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, float]:
    """One attempt of a job inside a Ray worker: (its return value, seconds). Exceptions propagate
    so that Ray retries them."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _failure_text(exc: BaseException) -> str:
    """The job's own error (``RayTaskError.cause``) when there is one, else Ray's (worker died...)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return error_text(cause)
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


def run_tasks(
    jobs: Sequence[tuple[Any, Callable[..., Any], tuple, dict]],
    finished: Callable[[Any, str | None, float], None],
    resources: dict[str, float],
    retries: int = DEFAULT_RETRIES,
    results: dict[Any, Any] | None = None,
) -> None:
    """Run ``jobs`` as Ray tasks (Ray must be initialised, see :func:`ray_session`).

    Args:
        jobs: ``(key, fn, args, kwargs)`` per job; ``fn`` and its arguments must pickle (module-level
            functions are sent by reference, so every node needs the same ``cti_repro``).
        finished: called in this process as each job ends: ``finished(key, error or None, seconds)``;
            ``seconds`` is the successful attempt's run time, or the time since submission on failure.
        resources: Ray resources per task (:func:`task_resources`).
        retries: further attempts after a failure (an exception or a dead worker) before giving up.
        results: if given, filled with ``key -> fn's return value`` of the jobs that succeeded.

    A Ctrl-C cancels the tasks still running or queued (their workers are killed) and re-raises.
    """
    ray = _require_ray()
    from cti_repro.clip_weights import KEY_ENV

    # the batch's resolved image-weights key reaches workers on other nodes too (see exported_key)
    env = {"runtime_env": {"env_vars": {KEY_ENV: os.environ[KEY_ENV]}}} if os.environ.get(KEY_ENV) else {}
    remote = ray.remote(_attempt).options(max_retries=max(0, int(retries)), retry_exceptions=True, **resources, **env)
    refs = {remote.remote(fn, args, kwargs): (key, time.perf_counter()) for key, fn, args, kwargs in jobs}
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            key, submitted = refs.pop(done[0])
            try:
                value, seconds = ray.get(done[0])
            except Exception as exc:  # RayTaskError (the job raised), WorkerCrashedError, ...
                finished(key, _failure_text(exc), time.perf_counter() - submitted)
                continue
            if results is not None:
                results[key] = value
            finished(key, None, seconds)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise


def run_rows_on_ray(
    jobs: Sequence[tuple[Any, Callable[..., Any], tuple, dict]],
    finished: Callable[[Any, str | None, float], None],
    cfg: StudyConfig,
    address: str | None = None,
    num_cpus: int | None = None,
    retries: int = DEFAULT_RETRIES,
) -> None:
    """The row jobs of :func:`cti_repro.run.batch.run_rows` on Ray (joined or started here)."""
    with ray_session(address, num_cpus) as ray:
        run_tasks(jobs, finished, task_resources(cfg, ray), retries)


__all__ = ["EXECUTORS", "DEFAULT_RETRIES", "ray_available", "ray_session", "task_resources", "run_tasks",
           "run_rows_on_ray"]
