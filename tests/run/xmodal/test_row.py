"""The text <-> image study end to end on the smoke profile (`cti-repro xmodal run`), and its data."""

import json
from pathlib import Path

import numpy as np
import pytest

from cti_repro.config import ConfigError, load_config
from cti_repro.data.catalogue import Catalogue, Product
from cti_repro.data.xmodal_pairs import build_xmodal, product_text
from cti_repro.evaluation.xmodal_metrics import xmodal_means
from cti_repro.results import load_results, read_result
from cti_repro.run.xmodal.row import apply_overrides
from cti_repro.run.xmodal.models import SPECS
from cti_repro.study import XMODAL_ALL, XMODAL_MODELS, XMODAL_RUBIO
from tests.study_config import private_smoke_config, run_study_cli

KEYS = ("MedR%_t2i", "MedR%_i2t", "R@1_t2i", "R@5_t2i", "R@10_t2i", "R@1_i2t", "R@5_i2t", "R@10_i2t", "R@5%_t2i", "R@5%_i2t")


@pytest.fixture(scope="module")
def smoke_config(tmp_path_factory):
    return private_smoke_config(tmp_path_factory.mktemp("xmodal"))


def _run(cfg, model, *extra):
    return run_study_cli("xmodal", cfg, model, *extra)


@pytest.mark.parametrize("model", XMODAL_ALL)
def test_every_model_writes_a_complete_record(smoke_config, model, capsys):
    assert _run(smoke_config, model, "--set", "xmodal.epochs=2") == 0
    out = json.loads(capsys.readouterr().out)
    rec = read_result(out["result"])
    assert Path(out["result"]).parent.name == "xmodal" and Path(out["result"]).name == f"{model}_seed0.json"
    n = rec["n_candidates"]
    assert rec["status"] == "ok" and rec["model"] == model and n == rec["data"]["test_products"] == 20
    assert len(rec["ranks"]["t2i"]) == len(rec["ranks"]["i2t"]) == n
    assert all(1 <= r <= n for d in ("t2i", "i2t") for r in rec["ranks"][d])
    assert set(KEYS) <= set(rec["means"])
    assert rec["means"] == pytest.approx(xmodal_means({d: np.array(rec["ranks"][d]) for d in ("t2i", "i2t")}, n))
    assert rec["config_hash"] and rec["data_fingerprint"] and rec["git_commit"] and rec["versions"]["gensim"]
    assert rec["config"]["xmodal"]["epochs"] == 2
    assert rec["tie_rule"] == {"rule": rec["config"]["eval"]["tie_rule"], "seed": rec["config"]["eval"]["tie_seed"]}
    spec = SPECS[model]
    assert (rec["aux_accuracy"] is not None) == (spec.kind == "two_branch" and spec.aux)
    if spec.kind == "kcca":
        assert rec["model_info"]["training_descriptors"] == rec["data"]["train_products"]
    _check_what_ran(model, rec)
    if model.startswith("TwoBranch") or model == "CLIP-heads":
        assert len(rec["training"]["history"]) == 2
    assert sum(v["queries"] for v in rec["per_root_category"]["t2i"].values()) == n
    assert rec["gallery"] and all(len(g["top"]) == 5 for g in rec["gallery"])


def _check_what_ran(model: str, rec: dict) -> None:
    """The record says what ran: smoke is offline, so Rubio's image side is a random AlexNet, labelled."""
    ran, spec = rec["ran"], SPECS[model]
    assert ran["whose"] == ("Rubio et al. (2017)" if model in XMODAL_RUBIO else "our variant")
    assert ran["query"] == ("title" if model.startswith("CLIP") else "title and attributes")
    assert ran["kcca"] == (None if spec.kind != "kcca" else "exact" if spec.exact else ran["kcca"])
    if model == "KCCA-Nystroem":
        assert ran["kcca"].startswith("approximate (Nystroem")
    if spec.image == "rubio":
        assert "AlexNet" in ran["image"]["branch"] and ran["image"]["input_px"] == 64
        assert ran["image"]["weights"] == "random(seed=0)" and ran["image"]["pretrained"] is False
        assert rec["encoders"]["image"]["name"] == "AlexNet (torchvision)"
    else:
        assert "CLIP" in ran["image"]["branch"] and ran["image"]["input_px"] is None
    if spec.text == "w2v":
        assert ran["text"]["vectors"].startswith("trained on this catalogue") and ran["text"]["pretrained"] is False
    if spec.text in ("bow", "tfidf"):
        assert ("counts" if spec.text == "bow" else "TF-IDF") in ran["text"]["representation"]


def test_same_seed_same_ranks_and_skip(smoke_config, capsys):
    assert _run(smoke_config, "TwoBranch-w2v", "--seed", "3", "--set", "xmodal.epochs=1") == 0
    a = read_result(json.loads(capsys.readouterr().out)["result"])
    assert _run(smoke_config, "TwoBranch-w2v", "--seed", "3", "--set", "xmodal.epochs=1") == 0
    assert "skipped" in capsys.readouterr().err
    assert _run(smoke_config, "TwoBranch-w2v", "--seed", "3", "--set", "xmodal.epochs=1", "--force") == 0
    b = read_result(json.loads(capsys.readouterr().out)["result"])
    assert a["ranks"] == b["ranks"]
    # the CtI loader does not pick the text-image records up
    assert not [r for r in load_results(load_config("smoke", smoke_config).path(a["config"]["results_dir"]))
                if r.get("model") in XMODAL_MODELS and r.get("setting") == "xmodal"]


def test_kcca_refusal_and_bad_set_are_one_line_errors(smoke_config, capsys):
    assert _run(smoke_config, "KCCA", "--set", "xmodal.kcca.memory_gb=0.0000001", "--force") == 2
    err = capsys.readouterr().err
    assert "KCCA on 160 training descriptors" in err and "max_descriptors to at most" in err and "Traceback" not in err
    assert _run(smoke_config, "KCCA", "--set", "xmodal.nope=1") == 2
    assert "xmodal.nope: unknown field" in capsys.readouterr().err
    cfg = load_config("smoke", smoke_config)
    with pytest.raises(ConfigError, match="xmodal.margin"):
        apply_overrides(cfg, ["xmodal.margin=-1"])
    assert apply_overrides(cfg, ["xmodal.kcca.max_descriptors=50"]).xmodal.kcca.max_descriptors == 50
    assert apply_overrides(cfg, ["xmodal.epochs=4"]).xmodal_hash() != cfg.xmodal_hash()
    assert apply_overrides(cfg, ["xmodal.epochs=4"]).hash() == cfg.hash()  # CtI rows stay current


def test_real_path_refuses_random_alexnet_and_missing_word2vec_in_one_line(smoke_config, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached ImageNet weights
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _run(smoke_config, "TwoBranch-w2v", "--set", "xmodal.alexnet.allow_random=false") == 2
    err = capsys.readouterr().err
    assert "AlexNet weights 'imagenet' are not available" in err and "IMAGENET1K_V1" in err and "Traceback" not in err
    assert _run(smoke_config, "KCCA", "--set", f"xmodal.word2vec.path={tmp_path}/GoogleNews.bin.gz") == 2
    err = capsys.readouterr().err
    assert "GoogleNews.bin.gz: no such file" in err and "gensim.downloader --download word2vec-google-news-300" in err


def test_products_without_image_or_text_are_excluded_and_counted(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()  # the catalogue format: images live in <root>/images
    prods = []
    for i in range(10):
        img = f"images/{i}.png" if i != 1 else ""
        if img:
            if i == 2:
                (tmp_path / img).write_bytes(b"not an image")
            else:
                Image.new("RGB", (4, 4)).save(tmp_path / img)
        prods.append(Product(f"p{i}", "" if i == 3 else f"title {i}", () if i == 3 else (f"Colour: c{i}",),
                             ("Root", f"Leaf{i % 2}"), img))
    prods.append(Product("p10", "t", (), ("Root",), "images/missing.png"))
    cat = Catalogue.from_products(prods, root=tmp_path)
    ok = np.ones(11, bool)
    ok[2] = False  # what the image features report for the undecodable file
    data = build_xmodal(cat, fields=["title", "attributes"], image_ok=ok)
    assert data.excluded == {"no_image": 2, "unreadable_image": 1, "no_text": 1}
    kept = set(np.concatenate(list(data.split.values())).tolist())
    assert kept == {0, 4, 5, 6, 7, 8, 9}
    assert data.texts[0] == "title 0. Colour: c0"
    assert product_text("T", ["a", " ", "b"], ["attributes"]) == "a. b"
    with pytest.raises(ValueError):
        product_text("T", [], ["price"])


def test_clip_heads_hidden_width_is_model_bn_hidden(smoke_config, capsys):
    # CLIP-heads claims the public code's BatchNorm heads, as the CtI rows build them: hidden width
    # model.bn_hidden (2048 by default), output width xmodal.dim (the hidden width was xmodal.dim)
    assert _run(smoke_config, "CLIP-heads", "--seed", "5", "--set", "model.bn_hidden=96", "--set", "xmodal.epochs=1") == 0
    info = read_result(json.loads(capsys.readouterr().out)["result"])["model_info"]
    assert info["head"] == "batchnorm" and info["bn_hidden"] == 96 and info["dim"] == 128
