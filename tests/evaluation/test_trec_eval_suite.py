"""`cti-repro eval` against trec_eval's own test suite (fixtures/trec_eval, see its README.md).

Each of our measures is compared, printed as trec_eval prints it (4 decimals), with the value in
trec_eval's published output: P@5, P@10 -> P_5, P_10; MAP@5, MAP@10 with ``ap_norm="R"`` ->
map_cut_5, map_cut_10; R-precision -> Rprec; P@1 -> success_1 (trec_eval's default P cut-offs
start at 5; success_1 is 1 exactly when rank 1 is relevant, i.e. P_1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cti_repro.evaluation.trec import evaluate_trec_files

FIXTURES = Path(__file__).parent / "fixtures" / "trec_eval"
OURS_TO_TREC_EVAL = {"P@1": "success_1", "P@5": "P_5", "P@10": "P_10", "MAP@5": "map_cut_5",
                     "MAP@10": "map_cut_10", "R-precision": "Rprec"}


def _trec_eval_output(name: str) -> dict[str, dict[str, str]]:
    """``{qid or "all": {measure: printed value}}`` of one of trec_eval's expected outputs."""
    out: dict[str, dict[str, str]] = {}
    for line in (FIXTURES / name).read_text().splitlines():
        measure, qid, value = line.split()
        out.setdefault(qid, {})[measure] = value
    return out


def _printed(ours: dict[str, float], theirs: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Our values (percent) printed as trec_eval prints them, beside its values, for the measures it has."""
    names = [n for n in OURS_TO_TREC_EVAL if OURS_TO_TREC_EVAL[n] in theirs]
    return ({n: f"{ours[n] / 100:.4f}" for n in names}, {n: theirs[OURS_TO_TREC_EVAL[n]] for n in names})


@pytest.mark.parametrize("qrels, run, expected", [
    ("qrels.test", "results.test", "out.test"),  # the default measures: P_5, P_10, Rprec
    ("qrels.test.with-comments", "results.test", "out.test"),  # '#' comment lines
    ("qrels.test", "results.test", "out.test.a"),  # all_trec: every measure we compute
])
def test_means_equal_trec_eval(qrels: str, run: str, expected: str) -> None:
    theirs = _trec_eval_output(expected)["all"]
    ev = evaluate_trec_files(FIXTURES / qrels, FIXTURES / run, ap_norm="R")
    got, want = _printed(ev.means, theirs)
    assert len(want) >= (3 if expected == "out.test" else 6)
    assert got == want
    assert str(len(ev.query_ids)) == theirs["num_q"]
    assert ev.notes == []


@pytest.mark.parametrize("run, expected", [
    ("results.test", "out.test.aq"),  # trec_eval -q
    ("results.trunc", "out.test.aqc"),  # trec_eval -q -c: query 302 has no run line, scores 0 and counts
])
def test_per_query_equal_trec_eval_through_the_cli(run: str, expected: str, capsys) -> None:
    from cti_repro.cli import main

    theirs = _trec_eval_output(expected)
    assert main(["eval", "--qrels", str(FIXTURES / "qrels.test"), "--run", str(FIXTURES / run),
                 "--ap-norm", "R", "--per-query"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["per_query"]) == [q for q in theirs if q != "all"] == ["301", "302", "303"]
    for qid, values in out["per_query"].items():
        got, want = _printed(values, theirs[qid])
        assert len(want) == 6 and got == want, qid
    got, want = _printed(out["all"], theirs["all"])
    assert got == want
    assert str(out["num_q"]) == theirs["all"]["num_q"]


def test_trec_eval_default_without_c_is_queries_run() -> None:
    """trec_eval 9 without -c averages over the queries in both files: 301 and 303 of results.trunc.

    Its per-query values are those of ``-q -c`` (out.test.aqc); the mean is theirs over two queries.
    """
    theirs = _trec_eval_output("out.test.aqc")
    ev = evaluate_trec_files(FIXTURES / "qrels.test", FIXTURES / "results.trunc", ap_norm="R", queries="run")
    assert ev.query_ids == ["301", "303"]
    for name, measure in OURS_TO_TREC_EVAL.items():
        want = (float(theirs["301"][measure]) + float(theirs["303"][measure])) / 2
        assert ev.means[name] / 100 == pytest.approx(want, abs=1e-4), name


def test_help_says_how_queries_are_averaged(capsys) -> None:
    from cti_repro.cli import main
    from cti_repro.evaluation.trec import QUERY_SETS

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "every query of the qrels, as `trec_eval -c` averages" in text
    assert "judged with no relevant document, scores 0" in text
    assert "--per-query" in text and "trec_eval -q" in text
    assert "{" + ",".join(QUERY_SETS) + "}" in text


def test_every_query_rule_equals_pytrec_eval_per_query(tmp_path) -> None:
    """Random files with judged queries that have no relevant document, qrels queries the run lacks
    and run queries the qrels lack: per query, ``queries="run"`` equals pytrec_eval (trec_eval's code
    without -c); ``queries="qrels"`` adds the missing queries at 0 and averages over all of them."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    import numpy as np

    rng = np.random.default_rng(23)
    docs = [f"d{j}" for j in range(80)]
    qrels = {f"q{i:02d}": {d: int(rng.random() < (0.0 if i % 5 == 0 else 0.2)) for d in docs} for i in range(30)}
    in_run = [q for i, q in enumerate(qrels) if i % 4 != 1] + ["extra1", "extra2"]
    run = {q: {d: float(rng.integers(0, 20)) for d in rng.choice(docs, size=int(rng.integers(1, 60)), replace=False)}
           for q in in_run}
    (tmp_path / "qrels").write_text("".join(f"{q} 0 {d} {r}\n" for q, rs in qrels.items() for d, r in rs.items()))
    (tmp_path / "run").write_text("".join(f"{q} Q0 {d} 1 {s} t\n" for q, ss in run.items() for d, s in ss.items()))
    measures = {"P@1": "P_1", "P@5": "P_5", "P@10": "P_10", "MAP@5": "map_cut_5", "MAP@10": "map_cut_10",
                "R-precision": "Rprec"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"P.1,5,10", "map_cut.5,10", "Rprec"}).evaluate(run)
    both = sorted(set(qrels) & set(run))
    assert sorted(ref) == both and any(sum(qrels[q].values()) == 0 for q in both)

    ev = evaluate_trec_files(tmp_path / "qrels", tmp_path / "run", ap_norm="R", queries="run")
    assert ev.query_ids == both
    for name, measure in measures.items():
        np.testing.assert_allclose(ev.per_query[name] / 100, [ref[q][measure] for q in both], atol=1e-12)

    ev = evaluate_trec_files(tmp_path / "qrels", tmp_path / "run", ap_norm="R")
    assert ev.query_ids == sorted(qrels)
    for name, measure in measures.items():
        want = [ref[q][measure] if q in ref else 0.0 for q in sorted(qrels)]
        np.testing.assert_allclose(ev.per_query[name] / 100, want, atol=1e-12)
        assert ev.means[name] / 100 == pytest.approx(sum(want) / len(qrels), abs=1e-12)
