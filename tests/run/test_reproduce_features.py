"""`reproduce` encodes every feature part the planned rows need in its features stage (issue 22).

The text-image study's ``clip_title`` part comes from the same open_clip model as the image and
``clip_category`` parts: encoded in the same stage it costs no second model build (a random
ViT-B-32 is 151 M parameters to initialise on 2 cores). The encoders are replaced by counting
fakes here: what is checked is how often the model is built and which stages exist, not the values
(those are the same seeded weights and the same calls either way).
"""

from __future__ import annotations

import numpy as np
import pytest

from cti_repro.config import load_config
from tests.smoke import seed_from_session, smoke_config


@pytest.fixture()
def reproduce_once(tmp_path, smoke_study, smoke_features, monkeypatch):
    """Run ``reproduce`` (both studies, no book) with the rows, pages and CLIP encoders faked;
    returns (CLIP builds, stage names)."""
    from cti_repro import features
    from cti_repro.run import batch, stages
    from cti_repro.run.xmodal import batch as xmodal_batch

    path = smoke_config(tmp_path)
    cfg = load_config("smoke", path)
    seed_from_session(smoke_study, smoke_features, cfg)
    for part in ("image", "clip_category", "clip_title"):  # the CLIP parts are computed again, the text ones hit
        for f in features.feature_cache_dir(cfg).glob(f"{part}-*"):
            f.unlink()
    builds, made = [], []
    monkeypatch.setattr(features, "load_clip", lambda *a, **k: builds.append(a) or (None, None, None, {"name": "fake"}))
    monkeypatch.setattr(features, "encode_images", lambda net, pre, paths, *a, **k: (
        np.ones((len(paths), 4), np.float32), np.ones(len(paths), bool)))
    monkeypatch.setattr(features, "encode_clip_text", lambda net, tok, texts, **k: np.ones((len(texts), 4), np.float32))
    monkeypatch.setattr(batch, "run_rows", lambda *a, **k: [])
    monkeypatch.setattr(batch, "execute_pages", lambda *a, **k: [])
    monkeypatch.setattr(batch, "write_data_files", lambda cfg: [])
    monkeypatch.setattr(xmodal_batch, "run_xmodal_rows", lambda *a, **k: [])
    real = stages.stages_for  # the stage timer is a dict: stage name -> seconds
    monkeypatch.setattr(batch, "stages_for", lambda cfg: made.append(real(cfg)) or made[-1])
    assert batch.reproduce("smoke", config_path=path, build_book=False, study="both")
    return builds, list(made[0])


def test_reproduce_builds_clip_once_for_both_studies(reproduce_once):
    builds, seen = reproduce_once
    assert len(builds) == 1, f"open_clip model built {len(builds)} times"
    # clip_title is encoded in the features stage; a "text-image features" stage, where Rubio's rows
    # need AlexNet's fc7, holds no CLIP part (the single build above says so)
    assert "features" in seen, seen


def test_reproduce_again_with_every_row_current(tmp_path, monkeypatch):
    """A second `make reproduce` (every row current) skips the features and row stages and goes on to
    the pages; it raised UnboundLocalError (``xmodal_parts`` imported only when some row would run)."""
    import dataclasses

    from cti_repro.run import batch
    from cti_repro.run.finegrained import batch as finegrained_batch
    from cti_repro.run.xmodal import batch as xmodal_batch

    def current(plan):
        return lambda *a, **k: [dataclasses.replace(t, skip=True) for t in plan(*a, **k)]

    monkeypatch.setattr(batch, "plan_rows", current(batch.plan_rows))
    monkeypatch.setattr(xmodal_batch, "plan_xmodal", current(xmodal_batch.plan_xmodal))
    monkeypatch.setattr(finegrained_batch, "plan_finegrained", current(finegrained_batch.plan_finegrained))
    ran = []
    monkeypatch.setattr(batch, "execute_pages", lambda *a, **k: ran.append("pages") or [])
    monkeypatch.setattr(batch, "write_data_files", lambda cfg: [])
    assert batch.reproduce("smoke", config_path=smoke_config(tmp_path), build_book=False, study="both")
    assert "pages" in ran
