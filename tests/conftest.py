"""Shared fixtures. The torchvision shim is installed by `import cti_repro` (lazy import hook)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import cti_repro  # noqa: E402,F401  (installs the torchvision import hook first)

import pytest  # noqa: E402


# ---- the smoke study, built once per session (tests/smoke.py) ----------------------------------
@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    from tests.smoke import make_study

    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="session")
def smoke_features(smoke_study):
    """The smoke study's feature cache folder, every default part computed once per session.

    The smoke rows read it; module fixtures that build their own smoke-profile study copy it
    (:func:`tests.smoke.seed_from_session`) instead of encoding the same 240 products again.
    """
    from tests.smoke import compute_features

    return compute_features(smoke_study)


@pytest.fixture(scope="session")
def smoke_rows(smoke_study, smoke_features):
    from tests.smoke import run_all_rows

    return run_all_rows(smoke_study)


@pytest.fixture(scope="session")
def smoke_notebooks(smoke_study, smoke_rows):
    from tests.smoke import run_notebooks

    return run_notebooks(smoke_study, smoke_rows)


@pytest.fixture(scope="session")
def smoke_book(smoke_study, smoke_notebooks):
    from tests.smoke import build

    return build(smoke_study, smoke_notebooks)
