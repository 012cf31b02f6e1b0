"""Metrics: hand-computed values, agreement with trec_eval (via ir_measures), TREC files, CLI."""

from __future__ import annotations

import gzip
import json
from fractions import Fraction as Fr

import numpy as np
import pytest
import torch

from cti_repro.evaluation.metrics import average_precision_at_k, compute_metrics, mean_metrics, precision_at_k, r_precision
from cti_repro.evaluation.trec import evaluate_trec
from cti_repro.study import METRICS

# Each case: (ranked relevance of one query, R, expected fractions). Keys: P@k, AP@k by norm, RP.
CASES = {
    # rel = 1 0 1 0 0 1 0 0 0 0, R = 4 (one relevant item not retrieved)
    # P@5 = 2/5, P@10 = 3/10
    # AP@5 terms: P@1 = 1, P@3 = 2/3 -> sum 5/3; hits 2 -> 5/6; min(5,4) = 4 -> 5/12; R = 4 -> 5/12
    # AP@10 adds P@6 = 3/6 -> sum 13/6; hits 3 -> 13/18; min(10,4) = 4 -> 13/24; R -> 13/24
    # RP: top 4 = 1 0 1 0 -> 2/4
    "mixed": ([1, 0, 1, 0, 0, 1, 0, 0, 0, 0], 4, {
        "P@1": 1, "P@5": Fr(2, 5), "P@10": Fr(3, 10),
        "AP@5": {"hits": Fr(5, 6), "min_k_R": Fr(5, 12), "R": Fr(5, 12)},
        "AP@10": {"hits": Fr(13, 18), "min_k_R": Fr(13, 24), "R": Fr(13, 24)},
        "RP": Fr(1, 2)}),
    # nothing relevant retrieved, R = 3: every metric 0 (AP's Z = 0 for hits -> defined as 0)
    "no_hits": ([0] * 10, 3, {
        "P@1": 0, "P@5": 0, "P@10": 0,
        "AP@5": {"hits": 0, "min_k_R": 0, "R": 0}, "AP@10": {"hits": 0, "min_k_R": 0, "R": 0},
        "RP": 0}),
    # R < k: rel = 0 1 0 0 0 0 0 0 0 0, R = 1
    # P@5 = 1/5, P@10 = 1/10; AP: only P@2 = 1/2 and Z = 1 for every norm; RP: top 1 = 0
    "r_lt_k": ([0, 1, 0, 0, 0, 0, 0, 0, 0, 0], 1, {
        "P@1": 0, "P@5": Fr(1, 5), "P@10": Fr(1, 10),
        "AP@5": {"hits": Fr(1, 2), "min_k_R": Fr(1, 2), "R": Fr(1, 2)},
        "AP@10": {"hits": Fr(1, 2), "min_k_R": Fr(1, 2), "R": Fr(1, 2)},
        "RP": 0}),
    # R > k and depth < R: rel = 1 1 0 1 1 | 1 0 0 0 1 | 1 1 (depth 12), R = 20
    # P@5 = 4/5, P@10 = 6/10
    # AP@5 terms P@1 = 1, P@2 = 1, P@4 = 3/4, P@5 = 4/5 -> sum 71/20; hits 4 -> 71/80;
    #   min(5,20) = 5 -> 71/100; R = 20 -> 71/400
    # AP@10 adds P@6 = 5/6, P@10 = 6/10 -> sum 299/60; hits 6 -> 299/360; min = 10 -> 299/600;
    #   R -> 299/1200
    # RP: ranks 13..20 missing = non-relevant; 8 hits in the 12 ranks -> 8/20
    "r_gt_k": ([1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1], 20, {
        "P@1": 1, "P@5": Fr(4, 5), "P@10": Fr(6, 10),
        "AP@5": {"hits": Fr(71, 80), "min_k_R": Fr(71, 100), "R": Fr(71, 400)},
        "AP@10": {"hits": Fr(299, 360), "min_k_R": Fr(299, 600), "R": Fr(299, 1200)},
        "RP": Fr(8, 20)}),
    # depth < k: rel = 0 1 1 (depth 3), R = 2; missing ranks are non-relevant
    # P@5 = 2/5, P@10 = 2/10; AP terms P@2 = 1/2, P@3 = 2/3 -> 7/6; Z = 2 for every norm -> 7/12
    # RP: top 2 = 0 1 -> 1/2
    "short": ([0, 1, 1], 2, {
        "P@1": 0, "P@5": Fr(2, 5), "P@10": Fr(1, 5),
        "AP@5": {"hits": Fr(7, 12), "min_k_R": Fr(7, 12), "R": Fr(7, 12)},
        "AP@10": {"hits": Fr(7, 12), "min_k_R": Fr(7, 12), "R": Fr(7, 12)},
        "RP": Fr(1, 2)}),
    # R = 0: everything 0, no division by zero
    "r_zero": ([0] * 10, 0, {
        "P@1": 0, "P@5": 0, "P@10": 0,
        "AP@5": {"hits": 0, "min_k_R": 0, "R": 0}, "AP@10": {"hits": 0, "min_k_R": 0, "R": 0},
        "RP": 0}),
}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_computed(case: str, backend: str) -> None:
    row, r, exp = CASES[case]
    rel = np.array([row], dtype=bool)
    n_rel = np.array([r])
    if backend == "torch":
        rel, n_rel = torch.from_numpy(rel), torch.from_numpy(n_rel)

    def check(got, want) -> None:
        got = got.numpy() if isinstance(got, torch.Tensor) else got
        assert got.shape == (1,)
        assert got[0] == pytest.approx(float(want), abs=1e-12)

    for k in (1, 5, 10):
        check(precision_at_k(rel, k), exp[f"P@{k}"])
    for k in (5, 10):
        for norm, want in exp[f"AP@{k}"].items():
            check(average_precision_at_k(rel, k, n_rel, norm=norm), want)
    check(average_precision_at_k(rel, 5), exp["AP@5"]["hits"])  # default norm, n_rel not needed
    check(r_precision(rel, n_rel), exp["RP"])


def test_batched_equals_single_and_percent() -> None:
    depth = 12
    rows = [row + [0] * (depth - len(row)) for row, _, _ in CASES.values()]
    rel = np.array(rows, dtype=bool)
    n_rel = np.array([r for _, r, _ in CASES.values()])
    for norm in ("hits", "min_k_R", "R"):
        got = compute_metrics(rel, n_rel, ap_norm=norm)
        assert list(got) == list(METRICS)
        for i, (_, _, exp) in enumerate(CASES.values()):
            assert got["P@5"][i] == pytest.approx(100 * float(exp["P@5"]))
            assert got["MAP@10"][i] == pytest.approx(100 * float(exp["AP@10"][norm]))
            assert got["R-precision"][i] == pytest.approx(100 * float(exp["RP"]))
        t = compute_metrics(torch.from_numpy(rel), torch.from_numpy(n_rel), ap_norm=norm)
        for name in METRICS:
            assert isinstance(t[name], np.ndarray)
            np.testing.assert_allclose(t[name], got[name], rtol=0, atol=1e-12)


def test_mean_metrics_and_input_checks() -> None:
    assert mean_metrics({"P@1": np.array([100.0, 0.0, 50.0])}) == {"P@1": 50.0}
    assert np.isnan(mean_metrics({"P@1": np.array([])})["P@1"])
    rel = np.array([[1, 1, 0]])
    with pytest.raises(ValueError, match="n_rel"):
        average_precision_at_k(rel, 5, None, norm="R")
    with pytest.raises(ValueError, match="normalisation"):
        average_precision_at_k(rel, 5, np.array([2]), norm="bogus")
    with pytest.raises(ValueError, match="n_rel"):
        r_precision(rel, np.array([1]))  # 2 relevant items retrieved but R = 1
    with pytest.raises(ValueError, match="k must"):
        precision_at_k(rel, 0)


# ---- agreement with trec_eval ------------------------------------------------------------------
def _random_run(seed: int, n_q: int = 50, n_d: int = 200):
    """Random relevance and tie-free scores; returns qrels/run dicts and (rel, n_rel) ranked by score."""
    rng = np.random.default_rng(seed)
    relevant = rng.random((n_q, n_d)) < rng.uniform(0.01, 0.3, size=(n_q, 1))
    relevant[np.arange(n_q), rng.integers(0, n_d, n_q)] = True  # every query has R >= 1
    scores = np.stack([rng.permutation(n_d) for _ in range(n_q)]).astype(float) / n_d  # no ties
    qrels = {f"q{i}": {f"d{j}": int(relevant[i, j]) for j in range(n_d)} for i in range(n_q)}
    order = np.argsort(-scores, axis=1)
    rel = np.take_along_axis(relevant, order, axis=1)
    return qrels, scores, order, rel, relevant.sum(1)


@pytest.mark.parametrize("depth", [200, 30])
def test_matches_trec_eval(depth: int) -> None:
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import AP, P, Rprec

    qrels, scores, order, rel, n_rel = _random_run(seed=depth)
    run = {f"q{i}": {f"d{j}": float(scores[i, j]) for j in order[i, :depth]} for i in range(len(order))}
    rel = rel[:, :depth]  # a truncated run: deeper relevant items are "not retrieved"
    measures = [P @ 1, P @ 5, P @ 10, AP @ 5, AP @ 10, Rprec]
    ref: dict[str, np.ndarray] = {str(m): np.zeros(len(rel)) for m in measures}
    for m in ir_measures.pytrec_eval.iter_calc(measures, qrels, run):
        ref[str(m.measure)][int(m.query_id[1:])] = m.value
    ours = compute_metrics(rel, n_rel, ap_norm="R")  # trec_eval's map_cut divides by R
    for name, key in [("P@1", "P@1"), ("P@5", "P@5"), ("P@10", "P@10"), ("MAP@5", "AP@5"),
                      ("MAP@10", "AP@10"), ("R-precision", "Rprec")]:
        np.testing.assert_allclose(ours[name] / 100, ref[key], rtol=0, atol=1e-9, err_msg=name)


def _reference_ap(row: np.ndarray, k: int, r: int, norm: str) -> float:
    """Plain-loop AP@k, written independently of the vectorised code."""
    hits, total = 0, 0.0
    for i, x in enumerate(row[:k], start=1):
        if x:
            hits += 1
            total += hits / i
    z = {"hits": hits, "min_k_R": min(k, r), "R": r}[norm]
    return total / z if z else 0.0


def test_ap_matches_plain_loop_for_all_norms() -> None:
    _, _, _, rel, n_rel = _random_run(seed=7)
    for norm in ("hits", "min_k_R", "R"):
        for k in (1, 5, 10, 50):
            got = average_precision_at_k(rel, k, n_rel, norm=norm)
            want = [_reference_ap(rel[i], k, int(n_rel[i]), norm) for i in range(len(rel))]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# ---- TREC files --------------------------------------------------------------------------------
QRELS = """q1 0 d1 1
q1 0 d2 0
q1 0 d3 2

q2 0 d5 1
q3 0 d1 0
q4 0 d9 1
"""
# Ties: trec_eval's rule, docid descending; the rank column and the file order are ignored.
# q1: d1 (0.9) first; d2 and d3 tie at 0.5 -> d3 before d2 (the rank column says d2 first).
#     rel = 1 1 0, R = 2. P@1 = 1, P@5 = 2/5, P@10 = 2/10, AP@5 = AP@10 = (1 + 1) / 2 = 1, RP = 1
# q2: d5 and d6 tie at 0.3; the file puts d5 first, the rule d6. rel = 0 1, R = 1.
#     P@1 = 0, P@5 = 1/5, P@10 = 1/10, AP = (1/2) / 1 = 1/2, RP = 0
# q3: judged, no relevant item -> 0 everywhere.  q4: absent from the run -> 0 everywhere.
# q9: not in the qrels -> ignored.
# Means over every qrels query, q1 to q4 (trec_eval -c, the default): P@1 = 1/4, P@5 = 0.6/4 = 0.15,
#     P@10 = 0.3/4 = 0.075, MAP@5 = MAP@10 = (1 + 1/2)/4 = 3/8, RP = 1/4
# Means over q1, q2, q4 (queries="relevant"): P@1 = 1/3, P@5 = 0.6/3 = 0.2, P@10 = 0.3/3 = 0.1,
#     MAP@5 = MAP@10 = (1 + 1/2)/3 = 1/2, RP = 1/3
# Means over q1, q2, q3 (queries="run", in both files): the same values as over q1, q2, q4.
RUN = """q1 Q0 d2 1 0.5 tag
q1 Q0 d3 2 0.5 tag
q1 Q0 d1 3 0.9 tag
q2 Q0 d5 1 0.3 tag
q2 Q0 d6 2 0.3 tag
q3 Q0 d1 1 1.0 tag
q9 Q0 d1 1 1.0 tag
"""
EXPECTED = {"P@1": 25.0, "P@5": 15.0, "P@10": 7.5, "MAP@5": 37.5, "MAP@10": 37.5, "R-precision": 25.0}
EXPECTED_3 = {"P@1": 100 / 3, "P@5": 20.0, "P@10": 10.0, "MAP@5": 50.0, "MAP@10": 50.0,
              "R-precision": 100 / 3}


def _write(path, text: str, gz: bool = False):
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize("gz", [False, True])
def test_evaluate_trec_hand_computed(tmp_path, gz: bool) -> None:
    q = _write(tmp_path / ("qrels.gz" if gz else "qrels"), QRELS, gz)
    r = _write(tmp_path / ("run.gz" if gz else "run"), RUN, gz)
    got = evaluate_trec(q, r)
    assert list(got) == list(METRICS)
    for name, want in EXPECTED.items():
        assert got[name] == pytest.approx(want, abs=1e-9), name
    # min_k_R and R: q1 has Z = min(k, 2) = 2 = hits, q2 Z = 1 = hits -> same values here.
    assert evaluate_trec(q, r, ap_norm="R")["MAP@5"] == pytest.approx(37.5)
    for queries in ("relevant", "run"):
        got = evaluate_trec(q, r, queries=queries)
        for name, want in EXPECTED_3.items():
            assert got[name] == pytest.approx(want, abs=1e-9), (queries, name)


def test_ties_are_broken_as_pytrec_eval_does(tmp_path) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(11)
    # tie-heavy: 30 queries x 60 docs, 3 distinct scores (most docs share a score), docids of mixed shapes
    docs = [f"{rng.integers(0, 10**9):010d}" if j % 2 else f"B0{rng.integers(0, 10**8):08d}" for j in range(60)]
    qrels = {f"q{i}": {d: int(rng.random() < 0.15) for d in docs} for i in range(30)}
    for i in range(30):
        qrels[f"q{i}"][docs[i]] = 1
    run = {q: {d: float(rng.integers(0, 3)) for d in docs} for q in qrels}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"P_1", "P_5", "P_10", "Rprec"}).evaluate(run)
    q = tmp_path / "qrels"
    q.write_text("".join(f"{qi} 0 {d} {r}\n" for qi, rs in qrels.items() for d, r in rs.items()))
    r = tmp_path / "run"
    lines = [(qi, d, s) for qi, ss in run.items() for d, s in ss.items()]
    rng.shuffle(lines)  # file order must not matter
    r.write_text("".join(f"{qi} Q0 {d} 1 {s} t\n" for qi, d, s in lines))
    got = evaluate_trec(q, r)
    for ours, theirs in (("P@1", "P_1"), ("P@5", "P_5"), ("P@10", "P_10"), ("R-precision", "Rprec")):
        want = 100 * np.mean([ref[qi][theirs] for qi in qrels])
        assert got[ours] == pytest.approx(want, abs=1e-9), ours


def test_evaluate_trec_matches_trec_eval_on_files(tmp_path) -> None:
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import AP, P, Rprec

    qrels, scores, order, _, _ = _random_run(seed=3, n_q=20, n_d=100)
    q_lines = [f"{q} 0 {d} {v}" for q, docs in qrels.items() for d, v in docs.items()]
    r_lines = [f"q{i} Q0 d{j} {n} {float(scores[i, j])!r} t" for i in range(20) for n, j in enumerate(order[i, :40])]
    q = _write(tmp_path / "qrels", "\n".join(q_lines) + "\n")
    r = _write(tmp_path / "run", "\n".join(r_lines) + "\n")
    ref = ir_measures.calc_aggregate([P @ 1, P @ 5, P @ 10, AP @ 5, AP @ 10, Rprec],
                                     ir_measures.read_trec_qrels(q), ir_measures.read_trec_run(r))
    got = evaluate_trec(q, r, ap_norm="R")
    for name, m in [("P@1", P @ 1), ("P@5", P @ 5), ("P@10", P @ 10), ("MAP@5", AP @ 5),
                    ("MAP@10", AP @ 10), ("R-precision", Rprec)]:
        assert got[name] / 100 == pytest.approx(ref[m], abs=1e-9), name


@pytest.mark.parametrize(
    "text, match",
    [
        ("q1 Q0 d1 1 0.5 t\n\nq1 Q0 d2 2 0.4\n", r"run:3: expected 6 columns"),  # blank line counted
        ("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 abc t\n", r"run:2: score 'abc' is not a number"),
        ("q1 Q0 d1 1 nan t\n", r"run:1: score 'nan' is not finite"),
        ("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", r"run:2: doc 'd1' listed twice"),
    ],
)
def test_evaluate_trec_bad_run_lines(tmp_path, text: str, match: str) -> None:
    q = _write(tmp_path / "qrels", QRELS)
    r = _write(tmp_path / "run", text)
    with pytest.raises(ValueError, match=match):
        evaluate_trec(q, r)


def test_evaluate_trec_bad_qrels(tmp_path) -> None:
    r = _write(tmp_path / "run", RUN)
    with pytest.raises(ValueError, match=r"qrels:2: expected 4 columns"):
        evaluate_trec(_write(tmp_path / "qrels", "q1 0 d1 1\nq1 d2 1\n"), r)
    with pytest.raises(ValueError, match=r"qrels:1: relevance 'yes' is not a number"):
        evaluate_trec(_write(tmp_path / "qrels", "q1 0 d1 yes\n"), r)
    with pytest.raises(ValueError, match="no query has a relevant item"):
        evaluate_trec(_write(tmp_path / "qrels", "q1 0 d1 0\n"), r)


def test_cli_eval(tmp_path, capsys) -> None:
    from cti_repro.cli import main

    q = _write(tmp_path / "qrels", QRELS)
    r = _write(tmp_path / "run", RUN)
    assert main(["eval", "--qrels", q, "--run", r]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == list(METRICS)
    for name, want in EXPECTED.items():
        assert out[name] == pytest.approx(want, abs=1e-9)
    # Bad input: the CLI reports the file and line, exit status 2.
    bad = _write(tmp_path / "bad_run", "q1 Q0 d1 1\n")
    assert main(["eval", "--qrels", q, "--run", bad]) == 2
    assert "bad_run:1" in capsys.readouterr().err
