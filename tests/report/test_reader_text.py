"""What a reader of the built book trips over, checked at its generator: printed ``nan`` cells,
unexplained near-chance numbers, changelog wording and benchmark jargon in reader-facing text."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd

from cti_repro.report.book_pages import md_table
from cti_repro.report.finegrained.chapter import chapter_md, full_ranking

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common as C  # noqa: E402
import render  # noqa: E402

# Wording that only makes sense to someone who knew an earlier version of the package, or a
# benchmark flag printed as if it explained itself.
CHANGELOG = re.compile(r"the earlier default|earlier versions|Mode: (quick|full)", re.I)


def _finegrained(model: str, seed: int, full: bool) -> dict:
    ranks = [1, 3, 12, 40]
    return {"status": "ok", "study": "finegrained", "setting": "finegrained", "model": model, "seed": seed,
            "profile": "embedded", "demonstration": True, "data": {"source": "synthetic", "products": 300},
            "encoders": {}, "protocol": {"queries": 4, "candidates_per_query": 101, "negatives": 100},
            "n_candidates": 300, "eval_rows": [0, 1, 2, 3], "ranks_sampled": {"t2i": ranks, "i2t": ranks},
            "ranks": {"t2i": ranks, "i2t": ranks} if full else None,
            "means": {"MedR%_t2i": 2.5, "MedR%_i2t": 2.5} if full else {},
            "cost": {"full_ranking": "computed" if full else "skipped: 300 x 300 = 90,000 pairs > max",
                     "pairs_per_query": {"sampled": 0 if full else 101, "full": 0 if full else None}},
            "wall_time_s": 1.0}


def test_md_table_leaves_missing_cells_blank() -> None:
    md = md_table(pd.DataFrame([{"model": "A", "note": "skipped"}, {"model": "B"}, {"model": None, "note": float("nan")}]))
    assert "nan" not in md and "None" not in md
    assert md.splitlines()[3] == "| B |  |"


def test_finegrained_full_ranking_prints_no_nan_note_and_states_chance() -> None:
    recs = [_finegrained("MLF", s, full=True) for s in (0, 1)] + [_finegrained("Kaleido-BERT", 0, full=False)]
    table = md_table(full_ranking(recs))
    assert "skipped: 300 x 300" in table and "nan" not in table
    md = chapter_md(recs, "cti-repro reproduce")
    assert "nan" not in md
    assert "Chance level (random scores) on this protocol is Recall@K = K / 101: R@1 1.0, R@5 5.0, R@10 9.9." in md
    assert "over all test candidates is Recall@K = K / 300: R@1 0.3, R@5 1.7, R@10 3.3, MedR % 50." in md


def test_finegrained_tables_fit_an_800px_column() -> None:
    # at 800 px the 11-column side-by-side table and the full-ranking note ran out of sight: the
    # columns that hold one value go into a sentence, a skipped model into a line of its own
    recs = [_finegrained("MLF", s, full=True) for s in (0, 1)] + [_finegrained("Kaleido-BERT", s, full=False)
                                                                     for s in (0, 1)]
    md = chapter_md(recs, "cti-repro reproduce")
    headers = [line for line in md.splitlines() if line.startswith("| ")]
    assert headers and all(h.count("|") - 1 <= 8 for h in headers), headers
    assert "Every row: 2 seeds, 4 queries, 101 candidates." in md
    assert "Not computed for Kaleido-BERT: 300 x 300 = 90,000 pairs > max." in md
    assert "| Kaleido-BERT | text → image | 0 |" not in md


def test_finegrained_chapter_when_every_model_ranked_all_candidates() -> None:
    # the smoke profile's pair budget lets both models rank every candidate: no "note" column, and
    # the chapter (and with it `cti-repro reproduce --profile smoke`'s book) raised AttributeError
    recs = [_finegrained(m, s, full=True) for m in ("MLF", "Kaleido-BERT") for s in (0, 1)]
    md = chapter_md(recs, "cti-repro reproduce")
    assert "Not computed for" not in md and "| Kaleido-BERT | text → image |" in md


def test_compact_phrase_says_1_seed_not_1_seeds() -> None:
    from cti_repro.report.finegrained.chapter import compact

    _, phrase = compact(pd.DataFrame([{"model": "A", "seeds": 1, "queries": 20}, {"model": "B", "seeds": 1, "queries": 20}]))
    assert phrase == "1 seed, 20 queries"


def test_book_pages_have_no_changelog_wording() -> None:
    found = [f"{p.name}: {m.group(0)}" for p in sorted((ROOT / "book").glob("*.md"))
             for m in CHANGELOG.finditer(p.read_text(encoding="utf-8"))]
    assert not found, found


def test_performance_footnote_says_what_the_benchmark_sizes_were(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(C, "RESULTS", tmp_path)
    row = {h: "x" for h in ("stage", "size", "ours", "reference", "ratio", "machine")}
    (tmp_path / "run_all.json").write_text(json.dumps({"mode": "quick", "threads": None}))
    text = render.table_markdown([row])
    assert not CHANGELOG.search(text), text
    assert "quick sizes of `make bench`" in text and "15 minutes on 2 CPU cores" in text and "all cores" in text
    (tmp_path / "run_all.json").write_text(json.dumps({"mode": "full", "threads": 1, "git_commit": "0123456789abcdef",
                                                       "finished_at": "2026-12-05 09:00 UTC"}))
    text = render.table_markdown([row])
    assert "full sizes" in text and "1 torch / numba threads at commit 0123456789ab, 2026-12-05 09:00 UTC." in text
    (tmp_path / "run_all.json").unlink()
    assert "were not recorded" in render.table_markdown([row])


def test_holm_star_pages_explain_an_unstarred_interval_that_excludes_zero() -> None:
    # the sensitivity and beyond tables print unadjusted 95 % intervals beside Holm-adjusted stars:
    # without a word, "[+0.34, +1.79]" with no star reads as a contradiction
    for name in ("report_ablations", "report_beyond"):
        nb = json.loads((ROOT / "book" / "templates" / f"{name}.ipynb").read_text(encoding="utf-8"))
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert "Holm-adjusted" in text, name
        assert "excludes 0 without a `*` is not significant after that correction" in text, name


def test_real_data_recipe_names_every_study_that_reproduce_runs() -> None:
    # `cti-repro reproduce` runs all three studies by default; a recipe that lists only Table 1's
    # 36 rows leaves the reader without the other studies' folders and weights
    from cti_repro.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    study = next(a for a in sub.choices["reproduce"]._actions if a.dest == "study")
    text = (ROOT / "book" / "real_data.md").read_text(encoding="utf-8")
    step = text[text.index("## 4. "):text.index("## Expected times")]
    for name in (c for c in study.choices if c not in ("cti", "both")):
        assert f"runs/xmarket/{name}/" in step, name
    assert "`pretrained: yes` for both encoders" not in step  # the text-image and fine-grained rows have more


def test_a_long_commands_box_folds_all_but_the_first_two() -> None:
    # the beyond page's box held twelve commands, a screen and a half before its first result
    from cti_repro.report.commands import commands_html

    cmds = {"cti-repro": "cti-repro report", "papermill": "papermill x"} | {f"extension {i}": f"cti-repro run {i}"
                                                                               for i in range(10)}
    box = commands_html(cmds)
    head, sep, folded = box.partition("<details><summary>10 more commands</summary>")
    assert sep and head.count("<pre") == 2 and folded.count("<pre") == 10
    assert all(v in box for v in cmds.values())
    assert "<details" not in commands_html(dict(list(cmds.items())[:2]))


def test_row_provenance_model_cell_has_no_python_reprs() -> None:
    from cti_repro.report.row_page import provenance_table

    info = {"attribute_pool": None, "dim": 256, "input_dims": {"image": 512, "title": 768},
            "modalities": ["image", "title"], "name": "CLIP-IT"}
    cell = provenance_table({"model_info": info}, "runs/x.json")["value"]["model"]
    assert cell == "dim=256; input_dims=image 512, title 768; modalities=image + title; name=CLIP-IT"


def test_templates_show_provenance_tables_through_a_styler() -> None:
    # a bare DataFrame is rendered by pandas' HTML repr, which cuts values at 50 characters
    # ("attribute_pool=None, bn_hidden=128, category_i..." on the text-image row pages)
    for nb_path in sorted((ROOT / "book" / "templates").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and "provenance_table(" in src:
                assert "styled(" in src, nb_path.name
