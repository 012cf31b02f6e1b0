"""The anchors of ``make bench`` (benchmarks/bench_anchors.py) on tiny inputs, where faiss-cpu and
bm25s are installed (the ``[bench]`` extra): the checks pass on the real outputs and catch a wrong one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

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
