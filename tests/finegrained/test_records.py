"""The study's records stay out of Table 1's, and its chapter is generated from them."""

import json

from cti_repro.report.finegrained.chapter import chapter_md, paired_difference, side_by_side
from cti_repro.results import load_results, write_result


def _record(model: str, seed: int, ranks: list[int], demonstration: bool = True) -> dict:
    return {"status": "ok", "study": "finegrained", "setting": "finegrained", "model": model, "seed": seed,
            "profile": "embedded", "demonstration": demonstration,
            "data": {"source": "synthetic", "products": 3000},
            "encoders": {"image": {"name": "torchvision resnet18", "weights": "random(seed=0)", "pretrained": False}},
            "protocol": {"queries": len(ranks), "candidates_per_query": 101, "negatives": 100},
            "n_candidates": 300, "eval_rows": list(range(len(ranks))), "ranks_sampled": {"t2i": ranks, "i2t": ranks}, "ranks": None,
            "means": {}, "per_root_category": {"t2i": {"Electronics": {"queries": len(ranks), "R@1": 50.0,
                                                                        "R@5": 50.0, "R@10": 100.0}}},
            "cost": {"pairs_scored": 0, "pairs_per_query": {"sampled": 0, "full": 0}}, "wall_time_s": 1.0}


def test_table1_loader_ignores_finegrained_records(tmp_path):
    write_result(tmp_path / "all" / "CLIP-I_seed0.json", {"status": "ok", "setting": "all", "model": "CLIP-I", "seed": 0})
    write_result(tmp_path / "finegrained" / "MLF_seed0.json", _record("MLF", 0, [1, 7]))
    assert [r["model"] for r in load_results(tmp_path)] == ["CLIP-I"]


def test_chapter_numbers_come_from_the_ranks_and_say_demonstration():
    recs = [_record("MLF", 0, [1, 7]), _record("MLF", 1, [1, 1])]
    table = side_by_side(recs)
    mlf = table[(table.model == "MLF") & (table.direction == "text → image")].iloc[0]
    assert mlf["ours R@1"].startswith("75.0 ")  # (1 + 0 + 1 + 1) / 4 queries x seeds
    assert mlf["ours R@10"].startswith("100.0 ")
    kal = table[table.model == "Kaleido-BERT"].iloc[0]
    assert kal["ours R@1"] == "not run" and kal["Fashion-Gen R@1"] == "33.88" and kal["Fashion-Gen R@5"] == "not found"
    md = chapter_md(recs, "cti-repro reproduce")
    assert "Demonstration, not a reproduction" in md and "random weights" in md
    real = chapter_md([_record("MLF", 0, [1], demonstration=False) | {"encoders": {}}], "x")
    assert "Demonstration" not in real
    assert "cti-repro reproduce --study finegrained" in chapter_md([], "cti-repro reproduce --study finegrained")
    json.dumps(md)


def test_paired_difference_is_per_query_on_the_same_queries():
    recs = [_record("MLF", 0, [1, 7]), _record("Kaleido-BERT", 0, [1, 1]), _record("MLF", 1, [2, 2]),
            _record("Kaleido-BERT", 1, [1, 3])]
    diff = paired_difference(recs)
    row = diff[diff.direction == "text → image"].iloc[0]
    # R@1 hits: Kaleido [1, 1], [1, 0] minus MLF [1, 0], [0, 0] -> differences 0, 1, 1, 0: mean 50 points
    assert row["Kaleido-BERT − MLF R@1"].startswith("+50.0 ")
    assert row["seeds"] == 2 and row["queries"] == 2
    other = [_record("MLF", 0, [1, 7]), {**_record("Kaleido-BERT", 0, [1, 1]), "eval_rows": [5, 6]}]
    assert paired_difference(other).empty  # not the same queries: no paired difference
