"""Make torchvision importable on a CPU-only torch.

The only torchvision release that pins ``torch==2.13.0`` (0.28.0) ships on PyPI as a CUDA build.
On a CPU torch its ``_C.so`` cannot load, and ``torchvision/_meta_registrations.py`` then fails
on ``register_fake("torchvision::nms")``, which breaks open_clip, timm, transformers and
sentence-transformers (transformers imports torchvision when it is installed).

:func:`ensure_torchvision_importable` defines stub schemas for the two ops so the import
succeeds. Where the native library loads (a CUDA torch on a GPU machine) it does nothing.
``python -m cti_repro.tv_compat --install`` also writes a ``.pth`` hook into site-packages so that
every process of the environment (papermill kernels, subprocesses) gets the fix before any import.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

_LIB = None
_NATIVE: bool | None = None


def ensure_torchvision_importable() -> bool:
    """Define stub op schemas if torchvision's native ops cannot load.

    Returns:
        True if torchvision's native library loaded (nothing patched), False if stubs were
        defined or torchvision is not installed.
    """
    global _LIB, _NATIVE
    if _NATIVE is not None:
        return _NATIVE
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        _NATIVE = False
        return False
    import torch

    lib_path = os.path.join(list(spec.submodule_search_locations)[0], "_C.so")
    try:
        torch.ops.load_library(lib_path)
        _NATIVE = True
        return True
    except (OSError, ImportError, RuntimeError):
        pass
    if _LIB is None:
        _LIB = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            try:
                _LIB.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            except RuntimeError:  # already defined by a native load or an earlier call
                pass
    _NATIVE = False
    return False


class _Finder(importlib.abc.MetaPathFinder):
    """Runs the shim the first time anything imports torchvision, then steps aside."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D401 - importlib API
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        ensure_torchvision_importable()
        return None  # let the normal finders import torchvision itself


def install_import_hook() -> None:
    """Register the lazy hook in this process (no torch import at interpreter start)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path) and "torchvision" not in sys.modules:
        sys.meta_path.insert(0, _Finder())


_PTH_NAME = "cti_repro_tv_compat.pth"


def install_pth(site_packages: str | None = None) -> Path:
    """Write a ``.pth`` file that installs the hook in every process of this environment.

    Args:
        site_packages: target directory; defaults to this interpreter's purelib.

    Returns:
        The path written.
    """
    target = Path(site_packages or sysconfig.get_paths()["purelib"]) / _PTH_NAME
    # A .pth line must be one statement starting with ``import``; it must not fail if the
    # package is later uninstalled, hence the find_spec guard.
    target.write_text(
        "import importlib.util as _u; "
        "_u.find_spec('cti_repro') and __import__('cti_repro.tv_compat', fromlist=['x']).install_import_hook()\n"
    )
    return target


if __name__ == "__main__":
    if "--install" in sys.argv:
        print(install_pth())
    else:
        print("native" if ensure_torchvision_importable() else "stubbed")
