"""open_clip and sentence-transformers import in fresh processes (CPU torch + CUDA-built torchvision).

Two processes, not one per check: each pays the torch + open_clip + sentence-transformers import
(~8 s of CPU), so the explicit-import and idempotence checks share one.
"""

import subprocess
import sys


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_import_without_cti_repro_via_pth_hook():
    # `make install` writes cti_repro_tv_compat.pth: papermill kernels and scripts need no explicit import.
    r = _py("import open_clip; import sentence_transformers; print('ok')")
    assert r.returncode == 0, r.stderr[-2000:]


def test_shim_is_idempotent_and_import_after_cti_repro():
    # the shim called twice before torchvision exists, then cti_repro and the libraries that pull it in
    r = _py("from cti_repro.tv_compat import ensure_torchvision_importable as f; a = f(); b = f(); "
            "import cti_repro, open_clip, sentence_transformers, torchvision; print(a == b)")
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr[-2000:]
