"""The anchors of ``make bench`` (benchmarks/bench_anchors.py) on tiny inputs, where faiss-cpu and
bm25s are installed (the ``[bench]`` extra): the checks pass on the real outputs and catch a wrong one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_anchors as A  # noqa: E402
import common as C  # noqa: E402


def test_faiss_anchor_agrees_with_ours_and_catches_a_wrong_ranking() -> None:
    pytest.importorskip("faiss")
    w = C.eval_workload(60, 500, dim=32, seed=1)
    w["candidates"][7] = w["candidates"][3]  # an exact duplicate: a tie faiss orders its own way
    w["candidates"][9] = w["candidates"][5] * (1 + 1e-7)  # a near-tie below float32's resolution
    idx, _ = A.ours_eval(w)
    _, ids = A.faiss_topk(w["queries"], w["candidates"])
    checks = A.check_faiss(w, idx, ids)
    assert checks["rows_identical"] + checks["rows_float32_near_ties"] == 60 and checks["rows_identical"] >= 50
    wrong = idx.clone()
    wrong[0, [0, 9]] = wrong[0, [9, 0]]  # first and tenth swapped: far beyond float32's resolution
    with pytest.raises(AssertionError, match="float32"):
        A.check_faiss(w, wrong, ids)


def test_bm25s_anchor_measures_the_difference_to_bm25okapi() -> None:
    pytest.importorskip("bm25s")
    titles, qtexts = C.titles_and_queries(300, 80, seed=2)
    corpus, queries = [A.tokenize(t) for t in titles], [A.tokenize(q) for q in qtexts]
    corpus += [["common", "x"]] * 400  # a term in more than half the titles: negative idf in BM25Okapi
    queries += [["common"], ["common", "x"]]
    checks = A.check_bm25s(corpus, queries)
    assert checks["queries_with_negative_idf_term"] == 2
    assert checks["max_rel_diff_float64_clean_queries"] <= 1e-12
    assert checks["max_rel_diff_float64_all"] > 1e-3  # the idf floor differs: measured, not hidden
    assert checks["retrieve_ids_equal_where_scores_distinct"] and checks["positions_with_distinct_scores"] > 0


def test_anchor_run_skips_what_is_not_installed(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(A, "have", lambda module: False)
    monkeypatch.setattr(C, "RESULTS", tmp_path)
    out = A.run(quick=True)
    assert not out["faiss"] and not out["bm25s"] and len(out["skipped"]) == 2
    assert (tmp_path / "anchors.json").is_file()


def test_render_writes_the_anchors_block_and_keeps_a_table_without_json(monkeypatch, tmp_path) -> None:
    import json

    import render

    page = tmp_path / "performance.md"
    page.write_text(f"intro\n{render.START}\nMEASURED\n{render.END}\n{render.ANCHORS_START}\nold\n{render.ANCHORS_END}\n")
    faiss_row = {"label": "paper scale", "repeats": 3, "workload": {"queries": 5471, "candidates": 3892, "dim": 256},
                 "checks": {"rows": 5471, "rows_identical": 5470, "rows_float32_near_ties": 1,
                            "max_exact_gap_in_those_rows": 4e-8},
                 "best_s": {"faiss IndexFlatIP": 0.3, "ours (top-10 + 6 metrics)": 0.2, "ours (top-10 only)": 0.15,
                            "float32 GEMM (numpy, as ours)": 0.1},
                 "ratio_best": {"faiss / ours (top-10 + 6 metrics)": 1.5, "faiss / ours (top-10 only)": 2.0}}
    (tmp_path / "anchors.json").write_text(json.dumps({"machine": {"cpu": "CPU", "cores": 2, "torch_threads": 2},
                                                      "faiss": [faiss_row], "bm25s": [], "skipped": []}))
    monkeypatch.setattr(C, "RESULTS", tmp_path)
    monkeypatch.setattr(render, "PAGE", page)
    monkeypatch.setattr(C, "ROOT", tmp_path)  # where render prints the page path from
    render.main([])
    text = page.read_text()
    assert "MEASURED" in text  # no eval/bm25/... JSON: the main table is kept, not blanked
    assert "old" not in text and "faiss IndexFlatIP top 10: 300 ms" in text and "| 1.5x |" in text
    assert "5,470 / 5,471 rows" in text and "best of 3" in text
