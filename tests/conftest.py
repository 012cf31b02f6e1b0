"""Shared fixtures. The torchvision shim is installed by `import cti_repro` (lazy import hook)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import cti_repro  # noqa: E402,F401  (installs the torchvision import hook first)
