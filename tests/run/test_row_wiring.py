"""The row reaches the code its config names: tie permutation, BM25's b, the sensitivity study's keys.

Each test runs :func:`cti_repro.run.row.run_row` on the smoke profile up to the evaluator, which is
replaced by a probe that records its arguments and stops the row (training, where a model has it,
is replaced by a no-op: what is checked is what the row builds and hands on, not what it learns).
These are the checks that planted bugs survived (issue 23): a tie permutation seeded per model, a
row ignoring ``cfg.bm25.b`` or hard-wiring ``loss.mask_same_label``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from cti_repro.config import load_config
from cti_repro.config.ablations import load_ablations
from cti_repro.run import row
from tests.smoke import seed_from_session, smoke_config

SETTING = "most_specific"


class _Stop(Exception):
    """Raised by the evaluator probe: the row has handed everything on."""


@pytest.fixture(scope="module")
def config_path(tmp_path_factory, smoke_study, smoke_features) -> Path:
    path = smoke_config(tmp_path_factory.mktemp("wiring"))
    seed_from_session(smoke_study, smoke_features, load_config("smoke", path))  # the session's features, copied
    return path


@pytest.fixture()
def probe(monkeypatch):
    """Run a row to its evaluator; returns what the loss factory, the trainer and the evaluator got."""
    import cti_repro.models.loss as loss_mod
    import cti_repro.models.train as train_mod

    def run(model: str, config_path: Path, overrides: dict[str, Any] | None = None) -> SimpleNamespace:
        got = SimpleNamespace(loss_args=None, loss_kwargs=None, net=None, evaluate=None, cfg=None)
        build_loss = loss_mod.build_loss

        def spy_loss(*args, **kwargs):
            got.loss_args, got.loss_kwargs = args, kwargs
            return build_loss(*args, **kwargs)

        def no_training(model_, train_data, val_data, loss_fn, cfg, batch_size, seed, device="cpu", progress=True):
            got.net = model_
            return train_mod.TrainResult(device=device)

        def evaluator(q_emb, c_emb, scores, data, tie_key, cfg, device, normalize=True):
            got.evaluate = dict(q_emb=q_emb, c_emb=c_emb, scores=scores, data=data, tie_key=np.asarray(tie_key),
                                normalize=normalize)
            raise _Stop

        monkeypatch.setattr(loss_mod, "build_loss", spy_loss)
        monkeypatch.setattr(train_mod, "train", no_training)
        monkeypatch.setattr(row, "_evaluate", evaluator)
        got.cfg = load_config("smoke", config_path, overrides=overrides or {})
        with pytest.raises(_Stop):
            row.run_row(SETTING, model, cfg=got.cfg, force=True, progress=False)
        return got

    return run


def test_one_tie_permutation_for_every_model_of_a_setting_and_tie_seed_changes_it(config_path, probe):
    random = {"eval.tie_rule": "random", "eval.tie_seed": 7}
    keys = {m: probe(m, config_path, random).evaluate["tie_key"] for m in ("BM25", "MPNet", "CLIP", "CLIP-ITA")}
    first = keys["BM25"]
    assert sorted(first) == list(range(len(first)))  # a permutation of the candidates
    assert all(np.array_equal(k, first) for k in keys.values()), "the tie permutation differs between models"
    other = probe("CLIP-ITA", config_path, {**random, "eval.tie_seed": 8}).evaluate["tie_key"]
    assert not np.array_equal(other, first)


def test_the_bm25_row_scores_with_the_configured_b(config_path, probe):
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.models.baselines import bm25_scores

    got = probe("BM25", config_path, {"bm25.b": 0.2})
    data, bm = got.evaluate["data"], got.cfg.bm25
    titles = [prepare_catalogue(got.cfg).titles[i] for i in data.candidates]
    want = bm25_scores(data.queries, titles, bm.k1, 0.2, bm.epsilon, sparse=True)
    default = bm25_scores(data.queries, titles, bm.k1, 0.75, bm.epsilon, sparse=True)
    scores = got.evaluate["scores"]
    assert abs(scores - want).max() == 0
    assert abs(scores - default).max() > 1e-3  # b matters on these titles: the check can fail


def _head_hidden(net) -> int:
    return net.category_head.net[0].out_features


# What each config key of the sensitivity study must change in the code it names:
# key -> (where, check(probe result, value) -> bool). A variant with a key missing here fails the test.
REACHES = {
    "loss.tau": ("loss", lambda g, v: g.loss_kwargs["tau"] == v),
    "loss.learn_tau": ("head + loss", lambda g, v: (g.net.logit_scale is not None) == v
                       and g.loss_kwargs["logit_scale"] is g.net.logit_scale),
    "loss.similarity": ("loss + evaluator", lambda g, v: g.loss_kwargs["similarity"] == v
                        and g.evaluate["normalize"] == (v == "cosine")),
    "loss.kind": ("loss", lambda g, v: g.loss_args[0] == v),
    "loss.mask_same_label": ("loss", lambda g, v: g.loss_kwargs["mask_same_label"] == v),
    "model.normalize_modalities": ("head", lambda g, v: g.net.normalize_modalities == v),
    "model.head": ("head", lambda g, v: g.net.head_kind == v
                   and (v != "batchnorm" or _head_hidden(g.net) == g.cfg.model.bn_hidden)),
    "model.bn_hidden": ("head", lambda g, v: _head_hidden(g.net) == v),
    "eval.candidates": ("evaluator", lambda g, v: len(g.evaluate["data"].candidates)
                        == (len(g.evaluate["data"].labels) if v == "all" else len(g.evaluate["data"].split["test"]))),
    "eval.queries": ("evaluator", lambda g, v: list(g.evaluate["data"].queries) == sorted(set(
        (d := g.evaluate["data"]).labels.tolist() if v == "all" else d.labels[d.split["test"]].tolist()))),
}


def _cases() -> list[tuple[str, str, Any, str]]:
    variants, _ = load_ablations(Path(__file__).resolve().parents[2] / "_config.yml")
    cases = [(name, key, value, v.models[0]) for name, v in variants.items() for key, value in v.overrides.items()]
    return [*cases, ("bn_hidden", "model.bn_hidden", 96, "CLIP-ITA"), ("bn_head", "model.head", "batchnorm", "CLIP-I"),
            ("queries_all", "eval.queries", "all", "CLIP-ITA")]


@pytest.mark.parametrize("variant, key, value, model", _cases(), ids=lambda x: str(x))
def test_each_sensitivity_key_reaches_the_code_it_names(config_path, probe, variant, key, value, model):
    assert key in REACHES, f"ablation {variant}: no check that {key} reaches its code (add it to REACHES)"
    extra = {"model.head": "batchnorm"} if key == "model.bn_hidden" else {}
    where, reaches = REACHES[key]
    got = probe(model, config_path, {**extra, key: value})
    assert reaches(got, value), f"ablation {variant}: {key}={value!r} does not reach the {where}"
    default = probe(model, config_path, extra)  # the same check fails at the default: it tests the key
    if key in ("eval.candidates", "eval.queries") or model in ("CLIP-ITA", "CLIP-IA", "CLIP-I"):
        assert not reaches(default, value), f"{key}: the check also holds without the override"


def test_all_category_queries_add_the_settings_other_labels_at_zero(config_path):
    """``eval.queries: all``: every label of the setting is a query; one without a test product
    scores 0 on every metric and counts in the means; the test split's queries score as before."""
    from cti_repro.results import read_result
    from cti_repro.study import METRICS

    default = read_result(row.run_row(SETTING, "BM25", cfg=load_config("smoke", config_path), progress=False))
    cfg = load_config("smoke", config_path, overrides={"eval.queries": "all"})
    rec = read_result(row.run_row(SETTING, "BM25", cfg=cfg, progress=False))
    extra = sorted(set(rec["queries"]) - set(default["queries"]))
    assert rec["config_hash"] != default["config_hash"] and set(default["queries"]) < set(rec["queries"])
    assert rec["ranking"]["queries"] == "all" and rec["ranking"]["queries_without_relevant"] == len(extra) > 0
    assert rec["data"]["test_queries"] == len(rec["queries"]) == rec["data"]["categories"]
    pos = {q: i for i, q in enumerate(rec["queries"])}
    for m in METRICS:
        got = rec["per_query"][m]
        assert all(got[pos[q]] == 0 for q in extra)
        assert [got[pos[q]] for q in default["queries"]] == default["per_query"][m]
        assert rec["means"][m] == pytest.approx(sum(got) / len(got))
