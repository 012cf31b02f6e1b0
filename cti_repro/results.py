"""The results store: one JSON per (setting, model, seed), atomic writes, provenance helpers.

Layout: ``<results_dir>/<setting>/<model>_seed<seed>.json``. Each record holds the config and
its hash, the data fingerprint, encoder identities, per-query metrics, means, training history,
wall time, device, package versions and git commit. Writes are atomic (temp file + rename).
A record whose ``config_hash`` and ``data_fingerprint`` match the current ones is *current*:
batch runs skip it, so an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from cti_repro.io_utils import atomic_write_json
from cti_repro.study import METRICS

RESULT_VERSION = 1


def result_path(results_dir: str | Path, setting: str, model: str, seed: int) -> Path:
    """``<results_dir>/<setting>/<model>_seed<seed>.json``."""
    return Path(results_dir) / setting / f"{model}_seed{seed}.json"


def write_result(path: str | Path, record: dict[str, Any]) -> Path:
    """Write a result record atomically (a reader never sees half a file)."""
    return atomic_write_json(path, {"result_version": RESULT_VERSION, **record})


def read_result(path: str | Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if it is missing or not valid JSON (e.g. a killed writer)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_current(path: str | Path, config_hash: str, data_fingerprint: str) -> bool:
    """True if a successful result exists for this config and data."""
    rec = read_result(path)
    return bool(
        rec
        and rec.get("status", "ok") == "ok"
        and rec.get("result_version") == RESULT_VERSION
        and rec.get("config_hash") == config_hash
        and rec.get("data_fingerprint") == data_fingerprint
    )


# Folders of <results_dir> that hold other studies' records: text <-> image (cti_repro.run.xmodal)
# and fine-grained text <-> image (cti_repro.run.finegrained).
OTHER_STUDIES: tuple[str, ...] = ("xmodal", "finegrained")


def load_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every readable record under ``results_dir`` (failed rows included, marked by ``status``)."""
    out = []
    for p in sorted(Path(results_dir).glob("*/*_seed*.json")):
        if p.parent.name in OTHER_STUDIES:  # records of the other studies, not Table 1 rows
            continue
        rec = read_result(p)
        if rec is not None:
            rec["_path"] = str(p)
            out.append(rec)
    return out


def load_xmodal_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every readable record of the text <-> image study (``<results_dir>/xmodal/*_seed*.json``)."""
    out = []
    for p in sorted((Path(results_dir) / "xmodal").glob("*_seed*.json")):
        rec = read_result(p)
        if rec is not None:
            rec["_path"] = str(p)
            out.append(rec)
    return out


def results_frame(records: list[dict[str, Any]], key: str = "means") -> pd.DataFrame:
    """One row per (setting, model, seed) with the six metrics (percent) and the status."""
    rows = []
    for r in records:
        row = {"setting": r.get("setting"), "model": r.get("model"), "seed": r.get("seed"),
               "status": r.get("status", "ok")}
        row.update({m: (r.get(key) or {}).get(m) for m in METRICS})
        rows.append(row)
    return pd.DataFrame(rows, columns=["setting", "model", "seed", "status", *METRICS])


# ---- provenance ------------------------------------------------------------------------------
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that change results (``not installed`` if absent)."""
    names = ("cti_repro", "torch", "torchvision", "open_clip_torch", "sentence-transformers", "transformers",
             "numpy", "scipy", "pandas", "rank-bm25")
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def git_commit(cwd: str | Path | None = None) -> str:
    """``<sha>`` of HEAD, with ``-dirty`` if tracked files changed; ``unknown`` outside git."""
    cwd = str(cwd or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware(device: str) -> dict[str, Any]:
    """The device a run used, the CPU count, platform and processor (and the GPU name on CUDA)."""
    info: dict[str, Any] = {"device": device, "cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "processor": platform.processor() or platform.machine()}
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    return info
