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
        ray.init(address=reachable_address(address), log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    try:
        yield ray
    finally:
        ray.shutdown()


CONNECT_TIMEOUT_S = 10.0
# The client preface of HTTP/2 and an empty SETTINGS frame: a gRPC server (Ray's GCS, Ray Client)
# answers with its own SETTINGS frame (type 4), anything else does not.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def reachable_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """The address to give ``ray.init``, checked within ``timeout`` seconds: a gRPC server answers there.

    ``ray.init`` on an address where nothing (or no Ray) listens retries for many minutes in C++,
    printing warnings and ignoring SIGTERM; this check fails at once, in Python (interruptible),
    with one line. Ray also replaces a loopback address (``127.0.0.1``, ``localhost``) by the
    node's own IP: the address Ray will really use is the one checked, returned, and named in a
    note when it differs from the one given.

    Args:
        address: ``auto``, ``host:port`` or ``ray://host:port``.
        timeout: seconds for the TCP connect and for the server's first answer.

    Raises:
        ConnectionError: nothing answers, or what answers is not a gRPC server (one line naming both addresses).
        ValueError: the address is not ``host:port``.
    """
    import sys

    client = address.startswith("ray://")
    target = address.removeprefix("ray://")
    if not client:
        try:  # Ray's own rule (auto: the cluster `ray start` recorded; loopback: this node's IP)
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address(address) or target
        except (ImportError, AttributeError):  # another Ray version: check the address as given
            pass
        except ConnectionError:
            raise
        except Exception as exc:  # noqa: BLE001 (Ray raises plain Exceptions for a bad address)
            raise ValueError(f"--address {address!r}: {exc}") from exc
        if target == "auto":
            return address  # no recorded cluster: ray.init says so at once
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--address {address!r}: expected auto, host:port or ray://host:port")
    via = "" if target == address.removeprefix("ray://") else f" (Ray's address for {address!r})"
    if via:
        print(f"note: Ray connects to {target}{via}: it replaces a loopback address by the node's, and "
              "auto by the cluster `ray start` recorded", file=sys.stderr)
    problem = _grpc_problem(host.strip("[]"), int(port), timeout)
    if problem:
        raise ConnectionError(f"Ray at {target}{via}: {problem} within {timeout:g} s; start the cluster "
                              "(`ray start --head`) or run without --address for a local one")
    return ("ray://" + target) if client else target


def _grpc_problem(host: str, port: int, timeout: float) -> str | None:
    """None if a gRPC (HTTP/2) server answers at ``host:port`` within ``timeout``, else what went wrong."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_H2_PREFACE)
            head = sock.recv(9)
    except TimeoutError:
        return "no answer"
    except OSError as exc:
        return f"cannot connect ({exc.strerror or exc})"
    if len(head) < 4 or head[3] != 4:  # the frame type of SETTINGS
        return "what listens there is not a Ray (gRPC) server"
    return None


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
    so that Ray retries them. A Ray worker runs many jobs: its notebooks share one warm kernel
    (:func:`cti_repro.run.warm_kernel.keep_for_process`)."""
    from cti_repro.run.warm_kernel import keep_for_process

    keep_for_process()
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
