"""Executing notebooks with papermill: kernels, stamps, atomic writes.

A notebook is *current* when its metadata holds the :func:`stamp` of the run that would write
it (profile, config hash, data fingerprint, template hash). :func:`execute` writes under a hidden
temporary name and renames when complete; a notebook that raises is kept as
``<name>.failed.ipynb`` with its traceback.

Inside a batch a notebook runs in its process's warm kernel (:mod:`cti_repro.run.warm_kernel`:
one kernel per worker, reset between notebooks); ``CTI_REPRO_WARM_KERNELS=0`` gives every
notebook a new kernel, as :func:`execute` always does outside a batch.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cti_repro.config import StudyConfig

KERNEL = "cti-repro"  # fallback kernelspec, installed into sys.prefix when python3 is not this interpreter
# Kernels run single-threaded unless the caller set these: the row work (two small heads, exact
# top-k over cached features) gains nothing from OpenMP threads, and on a busy 2-core machine
# their spin-waits made a training step ~10x slower (18 smoke rows: 4 s vs 159 s).
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
def stamp(cfg: StudyConfig, fingerprint: str, template: Path) -> dict[str, str]:
    """What makes an executed notebook current: profile, config hash, data and template hashes."""
    digest = hashlib.sha256(template.read_bytes()).hexdigest()[:16] if template.is_file() else "missing"
    return {"profile": cfg.profile, "config_hash": cfg.hash(), "data_fingerprint": fingerprint, "template": digest}


def failed_path(out: Path) -> Path:
    """Where a failed notebook ``out`` is kept, with its traceback: ``<name>.failed.ipynb``."""
    return out.with_suffix(".failed.ipynb")


def notebook_is_current(path: Path, expected: dict[str, str]) -> bool:
    """True if ``path`` is an executed notebook whose stamp is ``expected`` (see :func:`stamp`)."""
    try:
        meta = json.loads(path.read_text()).get("metadata", {}).get("cti_repro", {})
    except (OSError, json.JSONDecodeError):
        return False
    return meta == expected


@functools.lru_cache(maxsize=1)
def kernel_name() -> str:
    """A kernelspec that starts *this* interpreter: ``python3`` if it does, else a sys-prefix one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    for name in ("python3", KERNEL):
        try:
            argv0 = KernelSpecManager().get_kernel_spec(name).argv[0]
        except NoSuchKernel:
            continue
        # jupyter_client replaces a bare "python" / "python3" with sys.executable
        if argv0 in bare or Path(argv0).resolve() == Path(sys.executable).resolve():
            return name
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL, display_name=f"Python ({sys.prefix})", prefix=sys.prefix)
    return KERNEL


@contextlib.contextmanager
def _kernel_context(log: Path) -> Iterator[None]:
    """For the kernels started meanwhile: :data:`KERNEL_ENV` (unless set) and fd 2 (ZMQ warnings,
    crashes) pointed at ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    added = {k: v for k, v in KERNEL_ENV.items() if k not in os.environ}
    os.environ.update(added)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            for k in added:
                os.environ.pop(k, None)


def _retitle(nb: Any, title: str) -> None:
    """Replace the first ``# heading`` (the page title) with ``title``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            rest = cell.source.lstrip().split("\n", 1)
            cell.source = f"# {title}" + (f"\n{rest[1]}" if len(rest) > 1 else "")
            return


def _finish(nb: Any, hide_parameters: bool) -> None:
    """What an executed notebook gets before the book shows it: its figures at the size they are
    shown, as palette PNGs; papermill's injected cell (the build machine's paths) hidden if asked."""
    from cti_repro.run.notebook_images import compact_notebook_images

    compact_notebook_images(nb)
    for cell in nb.cells if hide_parameters else ():
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]


def _run(nb: Any, partial: Path, parameters: dict[str, Any], cwd: Path, log: Path) -> None:
    """papermill on ``nb`` into ``partial``: in this process's warm kernel when reuse is on here
    (:mod:`cti_repro.run.warm_kernel`; then a failure shuts that kernel down), else in a new one."""
    import papermill as pm

    from cti_repro.run import warm_kernel

    common = {"parameters": parameters, "kernel_name": kernel_name(), "progress_bar": False, "log_output": False,
              "cwd": str(cwd), "start_timeout": 300}
    with _kernel_context(log):  # the environment a new kernel would get: the warm kernel's key
        if not warm_kernel.active():
            pm.execute_notebook(nb, str(partial), **common)
            return
        try:
            km = warm_kernel.acquire(common["kernel_name"], cwd, log.parent)
            pm.execute_notebook(nb, str(partial), engine_name=warm_kernel.register_engine(), km=km, **common)
        except BaseException:
            warm_kernel.discard()  # a failed notebook (or Ctrl-C) must not leave its state to the next
            raise


def execute(
    template: Path, out: Path, parameters: dict[str, Any], meta: dict[str, str], cwd: Path,
    title: str | None = None, drop_tag: str | None = None, log: Path | None = None, hide_parameters: bool = False,
) -> Path:
    """Execute ``template`` with papermill into ``out``, atomically (hidden temp name, then rename).

    ``out``'s metadata gets ``cti_repro: meta`` (its :func:`stamp`: what makes it current);
    ``title`` replaces the page title; cells tagged ``drop_tag`` are removed first; the kernel's
    stderr goes to ``log`` (a warm kernel's to ``kernel-<pid>.log`` beside it); ``hide_parameters``
    keeps papermill's injected cell out of the HTML.
    On an error the executed notebook (traceback, ``FAILED`` title) is moved to
    ``<out>.failed.ipynb``, an older ``out`` removed, and the error re-raised.
    """
    import nbformat

    out.parent.mkdir(parents=True, exist_ok=True)
    failed_out, partial = failed_path(out), out.with_name(f".{out.stem}.partial.ipynb")
    nb = nbformat.read(template, as_version=4)
    if drop_tag:
        nb.cells = [c for c in nb.cells if drop_tag not in c.get("metadata", {}).get("tags", [])]
    if title:
        _retitle(nb, title)
    try:
        _run(nb, partial, parameters, cwd, log or out.parent / "logs" / f"{out.stem}.log")
    except Exception:  # (a KeyboardInterrupt leaves the hidden partial, overwritten next time)
        if partial.is_file():
            done = nbformat.read(partial, as_version=4)
            _retitle(done, f"FAILED: {title or out.stem}")
            _finish(done, hide_parameters)  # a failed page is published too (its traceback)
            nbformat.write(done, str(partial))
            os.replace(partial, failed_out)
            out.unlink(missing_ok=True)
        raise
    done = nbformat.read(partial, as_version=4)
    done.metadata["cti_repro"] = meta
    _finish(done, hide_parameters)
    nbformat.write(done, str(partial))
    os.replace(partial, out)
    failed_out.unlink(missing_ok=True)
    return out


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception (papermill's ``PapermillExecutionError`` carries the kernel's)."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)  # papermill's errors
    return f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"


__all__ = ["KERNEL", "KERNEL_ENV", "failed_path", "stamp", "notebook_is_current", "kernel_name", "execute", "error_text"]
