"""``reproduce --study``: a run of one study times only that study's stages.

A stage that runs nothing must not be printed nor saved: ``build_stages.json`` keeps each stage's
last time (the book's stage-time download and the README's table), so an empty ``rows`` stage of
``--study finegrained`` would overwrite the Table 1 rows' real time with zero seconds.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from cti_repro.config import load_config
from tests.smoke import smoke_config


def test_finegrained_study_has_no_table1_rows_stage(tmp_path, monkeypatch, capsys):
    from cti_repro.data import prepare
    from cti_repro.run import batch
    from cti_repro.run.finegrained import batch as fg_batch

    path = smoke_config(tmp_path)
    cfg = load_config("smoke", path)
    saved = cfg.path(cfg.results_dir).resolve() / "build_stages.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(json.dumps({"stages": {"rows": {"seconds": 321.0, "detail": "54 of 54 to run, 2 at once"}}}))
    # nothing is computed: the catalogue, the pages and the study's rows are stand-ins (its one row is current)
    monkeypatch.setattr(prepare, "prepare_catalogue", lambda cfg: SimpleNamespace(fingerprint=lambda: "fp"))
    monkeypatch.setattr(batch, "execute_pages", lambda *a, **k: [])
    monkeypatch.setattr(batch, "write_data_files", lambda cfg: [])
    monkeypatch.setattr(batch, "run_rows", lambda *a, **k: [])
    monkeypatch.setattr(fg_batch, "plan_finegrained", lambda cfg, fp, seeds, force, task, layout: [
        task("finegrained", "MLF", 0, tmp_path / "MLF_seed0.json", tmp_path / "MLF_seed0.ipynb", True)])
    monkeypatch.setattr(fg_batch, "run_finegrained_rows", lambda *a, **k: [])
    assert batch.reproduce("smoke", config_path=path, build_book=False, study="finegrained")
    out = capsys.readouterr().out
    assert "== fine-grained rows (0 of 1 to run)" in out
    assert "== rows" not in out, out
    assert json.loads(saved.read_text())["stages"]["rows"]["seconds"] == 321.0
