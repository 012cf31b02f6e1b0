"""`cti-repro eval` on hostile and odd TREC files (issue 18, items 3 to 5).

Refusals are one line naming the file and line, exit code 2; memory grows with the files' sizes.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import cti_repro
from cti_repro.cli import main
from cti_repro.evaluation import trec, trec_read
from cti_repro.evaluation.metrics import compute_metrics
from cti_repro.evaluation.trec import evaluate_trec, evaluate_trec_files

PACKAGE_ROOT = Path(cti_repro.__file__).resolve().parents[1]  # the child imports the package under test
QRELS = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 1\n"
RUN = "q1 Q0 d1 1 0.9 t\nq1 Q0 d2 2 0.5 t\nq2 Q0 d4 1 0.9 t\nq2 Q0 d3 2 0.8 t\n"
# q1: rel 1 0, R = 1 -> P@1 = 1, RP = 1.  q2: rel 0 1, R = 1 -> P@1 = 0, RP = 0.
MEANS = {"P@1": 50.0, "R-precision": 50.0, "P@10": 10.0}


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("cti-repro: error: "), err
    return err[0]


def _eval_cli(qrels: Path, run: Path, *extra: str) -> int:
    return main(["eval", "--qrels", str(qrels), "--run", str(run), *extra])


@pytest.fixture()
def qrels(tmp_path) -> Path:
    path = tmp_path / "qrels"
    path.write_text(QRELS)
    return path


# ---- item 3: bounded reads -----------------------------------------------------------------------
def test_devices_and_fifos_are_refused_not_read(tmp_path, qrels) -> None:
    """/dev/zero and a named pipe: refused before any read (in a child with 1 GiB of data memory and
    a time limit, so the old reader's endless line or blocking open fails the test, not the machine)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))
        from cti_repro.cli import main
        for run in ("/dev/zero", {str(fifo)!r}):
            print("rc", main(["eval", "--qrels", {str(qrels)!r}, "--run", run]), flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert child.stdout.split() == ["rc", "2", "rc", "2"], child.stderr[-2000:]
    err = [line for line in child.stderr.splitlines() if line.startswith("cti-repro:")]
    assert err == ["cti-repro: error: /dev/zero: not a regular file", f"cti-repro: error: {fifo}: not a regular file"]


def test_long_line_is_refused_with_its_line_number(tmp_path, qrels, capsys) -> None:
    run = tmp_path / "run"
    run.write_text(RUN + "q1 Q0 " + "d" * (trec_read.MAX_LINE_BYTES + 10) + " 3 0.1 t\n")
    assert _eval_cli(qrels, run) == 2
    assert f"{run}:5: line longer than {trec_read.MAX_LINE_BYTES} bytes" in _one_error_line(capsys)


def test_gzip_of_zero_bytes_stops_at_the_line_bound(tmp_path, qrels, capsys) -> None:
    """The issue's 4.6 MB gzip of 1 GiB of zero bytes, scaled to 64 MiB: one line, little memory."""
    run = tmp_path / "zeros.gz"
    run.write_bytes(gzip.compress(bytes(64 << 20), compresslevel=1))
    tracemalloc.start()
    try:
        assert _eval_cli(qrels, run) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{run}:1: line longer than" in _one_error_line(capsys)
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_gzip_bomb_is_refused(tmp_path, qrels, capsys) -> None:
    """32 MiB of blank lines (64 KiB of spaces each) in a 32 KiB gzip: each line is legal, the ratio is not."""
    line = b" " * (trec_read.MAX_LINE_BYTES - 1) + b"\n"
    run = tmp_path / "bomb.gz"
    run.write_bytes(gzip.compress(line * 512, compresslevel=9))
    assert run.stat().st_size * trec_read.GZIP_MAX_RATIO < trec_read.GZIP_MIN_ALLOWANCE
    assert _eval_cli(qrels, run) == 2
    msg = _one_error_line(capsys)
    assert f"{run}:257: gzip data inflates past {trec_read.GZIP_MIN_ALLOWANCE} bytes" in msg and "gzip bomb" in msg


def test_ordinary_gzip_is_read(tmp_path, qrels) -> None:
    run = tmp_path / "run.gz"
    run.write_bytes(gzip.compress(RUN.encode()))
    assert evaluate_trec(qrels, run)["P@1"] == pytest.approx(50.0)


# ---- item 4: memory grows with the input, not with longest id x ids or queries x max R ---------------
def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_one_long_docid_does_not_widen_every_docid(tmp_path) -> None:
    """5,000 run lines, one docid of 5,000 characters (a <U5000 array of all ids would be 100 MB)."""
    n = 5000
    qrels = tmp_path / "qrels"
    qrels.write_text("".join(f"q{i % 50} 0 d{i} 1\n" for i in range(0, n, 7)))
    run = tmp_path / "run"
    run.write_text("q0 Q0 " + "x" * 5000 + " 0 1.5 t\n" + "".join(f"q{i % 50} Q0 d{i} {i} {1 / (i + 1)} t\n"
                                                                     for i in range(n)))
    size = qrels.stat().st_size + run.stat().st_size
    peak = _peak_bytes(lambda: evaluate_trec(qrels, run))
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB for {size / 2**20:.2f} MiB of input"


def test_one_deep_query_does_not_widen_every_query(tmp_path) -> None:
    """One query with R = 5,000 and 2,000 one-document queries (a dense [2,001 x 5,000] matrix of floats
    would be 80 MB); the values equal those of the dense computation."""
    big, n_small = 5000, 2000
    qrels = tmp_path / "qrels"
    qrels.write_text("".join(f"big 0 b{j} 1\n" for j in range(big))
                     + "".join(f"s{i} 0 x{i} 1\n" for i in range(n_small)))
    run = tmp_path / "run"
    run.write_text("".join(f"big Q0 b{j} {j} {-j} t\n" for j in range(0, 2 * big, 2))
                   + "".join(f"s{i} Q0 x{i} 1 1.0 t\n" for i in range(0, n_small, 2)))
    peak = _peak_bytes(lambda: evaluate_trec(qrels, run))
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB"
    got = evaluate_trec(qrels, run)
    # big: b0, b2, ... b9998 at ranks 1..5000; b0..b4999 relevant -> hits at ranks 1..2500.
    # small: every second query retrieves its document at rank 1.
    q = n_small + 1
    assert got["R-precision"] == pytest.approx(100 * (2500 / 5000 + n_small / 2) / q)
    assert got["P@1"] == pytest.approx(100 * (1 + n_small / 2) / q)


@pytest.mark.parametrize("norm", ["hits", "min_k_R", "R"])
def test_blocks_equal_the_dense_matrix(monkeypatch, norm: str) -> None:
    """per_query_metrics (many small blocks) == compute_metrics on the whole [Q x max(10, max R)] matrix."""
    monkeypatch.setattr(trec, "BLOCK_CELLS", 300)
    rng = np.random.default_rng(5)
    n_q = 120
    n_rel = rng.choice([0, 1, 3, 9, 10, 11, 40, 200], size=n_q)
    depth = max(10, int(n_rel.max()))
    dense = np.zeros((n_q, depth), dtype=bool)
    lines_q, lines_pos, lines_hit = [], [], []
    for i in range(n_q):
        n_ret = int(rng.integers(0, 260))
        hits = np.zeros(n_ret, dtype=bool)
        hits[rng.permutation(n_ret)[: min(n_rel[i], n_ret)]] = rng.random(min(n_rel[i], n_ret)) < 0.7
        dense[i, : min(depth, n_ret)] = hits[:depth]
        lines_q += [i] * n_ret
        lines_pos += list(range(n_ret))
        lines_hit += list(hits)
    got = trec.per_query_metrics(np.array(lines_q, dtype=np.int64), np.array(lines_pos, dtype=np.int64),
                                 np.array(lines_hit, dtype=bool), n_rel.astype(np.int64), norm)
    want = compute_metrics(dense, n_rel, norm)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-12, err_msg=name)


# ---- item 5: silent wrong numbers ------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("bom_in", ["qrels", "run", "both"])
def test_byte_order_mark_is_stripped(tmp_path, gz: bool, bom_in: str) -> None:
    """A BOM must not glue itself to the first qid (that query would then match nothing)."""
    qrels, run = tmp_path / "qrels", tmp_path / "run"
    for path, text in ((qrels, QRELS), (run, RUN)):
        data = (("\ufeff" if bom_in in (path.name, "both") else "") + text).encode("utf-8")
        path.write_bytes(gzip.compress(data) if gz else data)
    got = evaluate_trec(qrels, run)
    for name, want in MEANS.items():
        assert got[name] == pytest.approx(want), name


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf"])
def test_non_finite_relevance_is_refused(tmp_path, value: str, capsys) -> None:
    qrels, run = tmp_path / "qrels", tmp_path / "run"
    qrels.write_text(f"q1 0 d1 1\nq1 0 d2 {value}\n")
    run.write_text(RUN)
    assert _eval_cli(qrels, run) == 2
    assert f"{qrels}:2: relevance '{value}' is not finite" in _one_error_line(capsys)


def test_warns_when_the_run_misses_the_qrels_queries(tmp_path, qrels, capsys) -> None:
    run = tmp_path / "run"
    run.write_text("Q1 Q0 d1 1 0.9 t\nQ2 Q0 d3 1 0.9 t\n")  # other ids: nothing matches
    assert _eval_cli(qrels, run) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["P@1"] == 0.0
    assert captured.err.splitlines() == [f"cti-repro: warning: {run}: none of the 2 evaluated queries of "
                                         f"{qrels} appears in the run: every measure is 0 (check the query ids)"]
    run.write_text("q1 Q0 d1 1 0.9 t\n")
    many = tmp_path / "qrels_many"
    many.write_text(QRELS + "q3 0 d1 1\n")
    assert _eval_cli(many, run) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"cti-repro: warning: {run}: only 1 of the 3 evaluated queries of {many} appear in the run; "
                   "the others score 0"]
    assert _eval_cli(many, run, "--queries", "run") == 0  # trec_eval without -c: q2, q3 drop out
    err = capsys.readouterr().err.splitlines()
    assert err == [f"cti-repro: warning: {run}: only 1 of the 3 evaluated queries of {many} appear in the run; "
                   "the others are left out of the mean"]
    run.write_text(RUN)
    assert _eval_cli(qrels, run) == 0
    assert capsys.readouterr().err == ""


def test_comment_lines_are_skipped_as_trec_eval_does(tmp_path, qrels) -> None:
    """trec_eval 10: '#' in a qrels line's first column, or first after blanks in a run line; a '#'
    inside an id is part of it."""
    run = tmp_path / "run"
    run.write_text("# a run comment\n" + RUN.replace("d4", "d#4") + "   # indented comment, 7 words long\n")
    q = tmp_path / "qrels_c"
    q.write_text("# judged by\n# two lines of comments\n" + QRELS + "q2 0 d#4 0\n")
    ev = evaluate_trec_files(q, run)
    assert ev.query_ids == ["q1", "q2"]
    for name, want in MEANS.items():
        assert ev.means[name] == pytest.approx(want), name


def test_queries_rule_is_checked(tmp_path, qrels) -> None:
    run = tmp_path / "run"
    run.write_text(RUN)
    with pytest.raises(ValueError, match="unknown query set 'all'"):
        evaluate_trec(qrels, run, queries="all")
    run.write_text("zz Q0 d1 1 0.9 t\n")
    with pytest.raises(ValueError, match="no query of the run is judged in"):
        evaluate_trec(qrels, run, queries="run")
