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


# ---- pytest-xdist (`make test` runs two workers) ------------------------------------------------
@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Every test that uses a smoke-study fixture runs on one worker (``--dist loadgroup``): the
    session fixtures are built once per worker, so spreading their users would build the smoke
    study (rows, notebooks, book: ~1.5 min) on both."""
    for item in items:
        if any(name.startswith("smoke_") for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("smoke"))


def pytest_collection_finish(session):
    """Fail loudly when the grouping above did not take: xdist's loadgroup groups by a "@name"
    suffix on the node id, and a pytest that drops it (9.2, pytest-xdist#1386) would silently
    spread the smoke study over both workers and build it twice."""
    config = session.config
    if getattr(config, "workerinput", None) is None or not config.getoption("loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"--dist loadgroup lost its groups on {len(lost)} tests (e.g. {lost[0]}): this pytest "
            f"({pytest.__version__}) does not keep xdist's '@group' node-id suffix; install the "
            "pinned one (pip install -e '.[dev]') or run without -n."
        )
