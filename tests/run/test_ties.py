"""The tie rule of the row pipeline (eval.tie_rule): id order vs a seeded permutation."""

import numpy as np
import pytest

from cti_repro.evaluation.evaluate import evaluate_scores
from cti_repro.run.row import tie_order


def _ids(n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(0)  # half ISBN-like (digits: sort first), half B0... ASINs
    return np.array([f"{rng.integers(10**9):010d}" if i % 2 else f"B0{rng.integers(10**8):08d}" for i in range(n)],
                    dtype=object)


def test_id_rule_favours_isbns_the_random_rule_does_not():
    ids = _ids()
    scores = np.zeros((1, len(ids)))  # BM25 over titles: most candidates score 0
    isbn = np.array([i[0].isdigit() for i in ids])
    top = {}
    for rule in ("id", "random"):
        idx, _ = evaluate_scores(scores, ["q"], np.array(["x"] * len(ids), dtype=object),
                                 tie_key=tie_order(ids, rule, seed=3), k=10)
        top[rule] = isbn[np.asarray(idx[0, :10])].mean()
    assert top["id"] == 1.0  # every tied top-10 slot goes to an ISBN-like id
    assert 0.2 <= top["random"] <= 0.8


def test_random_rule_is_a_seeded_permutation():
    ids = _ids(50)
    a, b, c = tie_order(ids, "random", 1), tie_order(ids, "random", 1), tie_order(ids, "random", 2)
    assert sorted(a) == list(range(50)) and np.array_equal(a, b) and not np.array_equal(a, c)
    ranks = tie_order(ids, "id")
    assert [ids[i] for i in np.argsort(ranks)] == sorted(ids)
    with pytest.raises(ValueError, match="tie_rule"):
        tie_order(ids, "alphabet")
