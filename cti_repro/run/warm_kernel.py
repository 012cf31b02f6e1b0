"""One warm Jupyter kernel per process, reused for the notebooks it executes.

A kernel start plus the row notebook's imports (torch, pandas, matplotlib, cti_repro) costs
~4-5 s; a BM25 row's own work ~0.6 s. :func:`cti_repro.run.notebooks.execute` therefore runs a
notebook in this process's warm kernel when reuse is on here: inside :func:`warm_kernels` (the
batch's serial path, the report pages), or in a process that called :func:`keep_for_process`
(the batch's pool workers, Ray workers). Elsewhere, and everywhere with
``CTI_REPRO_WARM_KERNELS=0``, every notebook gets a new kernel as before.

Contract (what makes a warm run equal to a fresh one):

* The kernel is started with the same environment and working directory a fresh one would get
  (this process's ``os.environ`` at the time, :data:`~cti_repro.run.notebooks.KERNEL_ENV` added,
  and the notebook's ``cwd``). Both are its *key*: a notebook whose key differs (another cwd,
  another ``$CTI_REPRO_IMAGE_WEIGHTS_KEY`` from another batch, ...) gets a new kernel.
* Before each further notebook the kernel is reset (:data:`_RESET`): the user namespace
  (``InteractiveShell.reset(new_session=True)``: execution counts restart at 1), ``os.environ``,
  cwd, ``sys.path`` and the warnings filters as captured at start, open matplotlib figures
  closed and rcParams back to the rc file's, torch's thread count back to its first-seen value,
  and the global generators of torch, numpy and ``random`` seeded from entropy as in a new process
  (the rows seed their own: :func:`cti_repro.run.row.run_row`). Imported modules stay: that is the saving.
* After a notebook that fails (an error, an interrupt) the kernel is shut down; a dead one is
  replaced. Kernels end with the scope, or at process exit (``atexit`` and multiprocessing's
  finalizers); the kernel also polls its parent (``JPY_PARENT_PID``) and exits with it.
* The kernel's own stderr goes to ``kernel-<pid>.log`` beside the notebook logs (per notebook
  there is no kernel start to log).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "CTI_REPRO_WARM_KERNELS"
ENGINE = "cti-warm"

# Run once in the new kernel (in a throwaway namespace): what the reset puts back.
_CAPTURE = """
import os, sys, types, warnings
st = types.ModuleType("_cti_warm_state")
st.env, st.cwd, st.path, st.filters = dict(os.environ), os.getcwd(), list(sys.path), list(warnings.filters)
st.threads = None
sys.modules["_cti_warm_state"] = st
"""
_RESET = """
import os, sys, warnings
st = sys.modules["_cti_warm_state"]
plt = sys.modules.get("matplotlib.pyplot")
if plt is not None:
    plt.close("all")
if "matplotlib" in sys.modules:
    sys.modules["matplotlib"].rc_file_defaults()
torch = sys.modules.get("torch")
if torch is not None:
    st.threads = st.threads or torch.get_num_threads()  # first seen after a notebook that restored it
    torch.set_num_threads(st.threads)
    torch.seed()  # a new process seeds its global generators from entropy (torch 2.13 too): so do these
if "numpy" in sys.modules:
    sys.modules["numpy"].random.seed()
if "random" in sys.modules:
    sys.modules["random"].seed()
os.environ.clear()
os.environ.update(st.env)
os.chdir(st.cwd)
sys.path[:] = st.path
warnings.filters[:] = st.filters
warnings._filters_mutated()  # forget "once"/"default" registries, as a new process would
warnings.onceregistry.clear()
get_ipython().reset(new_session=True)
"""
_RUN_TIMEOUT_S = 120


def enabled() -> bool:
    """False when ``$CTI_REPRO_WARM_KERNELS`` is ``0`` (or ``false``/``no``/``off``): fresh kernels only."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass
class WarmKernel:
    """A started kernel, the key it was started with and how many notebooks it has run."""

    km: Any
    key: tuple
    stderr: Any
    used: int = 0

    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        return bool(run_sync(self.km.is_alive)())

    def run(self, code: str) -> None:
        """Execute ``code`` silently in a throwaway namespace; raise if it fails."""
        kc = self.km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=_RUN_TIMEOUT_S)
            reply = kc.execute_interactive(f"exec({code!r}, {{}})", silent=True, store_history=False,
                                           timeout=_RUN_TIMEOUT_S)
        finally:
            kc.stop_channels()
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"warm kernel reset failed: {reply['content'].get('evalue', '?')}")

    def shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        try:
            if run_sync(self.km.is_alive)():
                run_sync(self.km.shutdown_kernel)(now=False)
        except Exception:  # noqa: BLE001 (already gone: cleaning up is all that is left)
            with contextlib.suppress(Exception):
                run_sync(self.km.shutdown_kernel)(now=True)
        finally:
            with contextlib.suppress(Exception):
                run_sync(self.km.cleanup_resources)()
            self.stderr.close()


_kernel: WarmKernel | None = None
_scopes = 0  # open warm_kernels() blocks in this process
_process_wide = False  # keep_for_process() was called


def active() -> bool:
    """True when this process reuses its kernel now (enabled, and in a scope or a worker process)."""
    return enabled() and (_scopes > 0 or _process_wide)


def shutdown() -> None:
    """Shut down this process's warm kernel, if any."""
    global _kernel
    kernel, _kernel = _kernel, None
    if kernel is not None:
        kernel.shutdown()


def discard() -> None:
    """After a failed notebook: the kernel's state is unknown, so the next one starts anew."""
    shutdown()


def _key(kernel_name: str, cwd: Path) -> tuple:
    return kernel_name, str(cwd), tuple(sorted(os.environ.items()))


def _start(kernel_name: str, cwd: Path, log_dir: Path) -> WarmKernel:
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    log_dir.mkdir(parents=True, exist_ok=True)
    stderr = open(log_dir / f"kernel-{os.getpid()}.log", "ab")  # noqa: SIM115 (closed with the kernel)
    km = AsyncKernelManager(kernel_name=kernel_name)
    try:
        # the history in memory, as nbclient starts its kernels (no sqlite file per kernel)
        run_sync(km.start_kernel)(extra_arguments=["--HistoryManager.hist_file=:memory:"], cwd=str(cwd),
                                  stderr=stderr)
        kernel = WarmKernel(km, _key(kernel_name, cwd), stderr)
        kernel.run(_CAPTURE)
    except BaseException:
        with contextlib.suppress(Exception):
            run_sync(km.shutdown_kernel)(now=True)
        stderr.close()
        raise
    return kernel


def acquire(kernel_name: str, cwd: Path, log_dir: Path) -> Any:
    """The kernel manager of a kernel ready for the next notebook (started, or reused and reset).

    Call with the notebook's environment in place (see :func:`cti_repro.run.notebooks.execute`):
    it is part of the key. A kernel with another key, or a dead one, is replaced.
    """
    global _kernel
    key = _key(kernel_name, cwd)
    if _kernel is not None and (_kernel.key != key or not _kernel.alive()):
        shutdown()
    if _kernel is None:
        _kernel = _start(kernel_name, cwd, log_dir)
    elif _kernel.used:
        try:
            _kernel.run(_RESET)
        except Exception:  # it died meanwhile, or will not reset: a new kernel is the same as a reset one
            discard()
            _kernel = _start(kernel_name, cwd, log_dir)
        except BaseException:
            discard()
            raise
    _kernel.used += 1
    return _kernel.km


@contextlib.contextmanager
def warm_kernels() -> Iterator[None]:
    """Reuse one kernel for the notebooks executed in this process within the block; shut it down after."""
    global _scopes
    _scopes += 1
    try:
        yield
    finally:
        _scopes -= 1
        if _scopes == 0 and not _process_wide:
            shutdown()


def keep_for_process() -> None:
    """Reuse one kernel for every notebook this (worker) process executes, until it exits."""
    global _process_wide
    if _process_wide:
        return
    _process_wide = True
    atexit.register(shutdown)
    from multiprocessing import util

    util.Finalize(None, shutdown, exitpriority=100)  # pool workers run these, fork or spawn


@functools.lru_cache(maxsize=1)
def register_engine() -> str:
    """papermill engine ``cti-warm``: papermill's nbclient engine on the given kernel manager (``km``),
    its client's channels closed after the notebook (nbclient leaves them open when it does not
    own the kernel)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, logger, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    class WarmEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                     stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                     execution_timeout: int | None = None, **kwargs: Any) -> Any:
            kwargs = remove_args(["input_path"], **kwargs)  # as NBClientEngine does
            final = merge_kwargs(remove_args(["timeout", "startup_timeout"], **kwargs),
                                 timeout=execution_timeout or kwargs.get("timeout"), startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=logger, log_output=log_output,
                                 stdout_file=stdout_file, stderr_file=stderr_file)
            client = PapermillNotebookClient(nb_man, **final)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
                    client.kc = None

    papermill_engines.register(ENGINE, WarmEngine)
    return ENGINE


__all__ = ["ENV", "ENGINE", "enabled", "active", "acquire", "discard", "shutdown", "warm_kernels", "keep_for_process",
           "register_engine"]
