"""The text-image chapter's what-ran table and box are generated from the records' ``ran`` blocks."""

import dataclasses

import pytest

from cti_repro.config import load_config
from cti_repro.report.xmodal import chapter as xr
from cti_repro.report.xmodal.chapter import TABLE_METRICS
from cti_repro.run.xmodal.models import what_ran

RANDOM_ALEXNET = {"name": "AlexNet (torchvision)", "weights": "random(seed=0)", "pretrained": False}
IMAGENET_ALEXNET = {"name": "AlexNet (torchvision)", "weights": "ImageNet (IMAGENET1K_V1)", "pretrained": True}
CLIP_RANDOM = {"name": "ViT-B-32", "weights": "random(seed=0)", "pretrained": False}
W2V_CATALOGUE = {"text": "word2vec", "dim": 100, "pretrained": False, "path": "", "epochs": 20}
W2V_GOOGLE = {"text": "word2vec", "dim": 300, "pretrained": True, "path": "/x/GoogleNews-vectors-negative300.bin"}


def _record(model, cfg, image_identity, text_info, kcca=None):
    return {"status": "ok", "model": model, "seed": 0, "n_candidates": 300, "means": {m: 10.0 for m in TABLE_METRICS},
            "ran": what_ran(model, cfg, image_identity, text_info, kcca, ["title", "attributes"])}


def _records(cfg, alexnet=RANDOM_ALEXNET, w2v=W2V_CATALOGUE):
    return [_record("KCCA", cfg, alexnet, w2v, {"method": "exact"}),
            _record("TwoBranch-w2v", cfg, alexnet, w2v),
            _record("TwoBranch-w2v-CLIPfeat", cfg, CLIP_RANDOM, w2v),
            _record("CLIP", cfg, CLIP_RANDOM, None)]


def test_the_box_names_the_image_branch_weights_and_vectors_that_ran():
    cfg = load_config("embedded")
    text = xr.not_a_reproduction(_records(cfg))
    assert ("TwoBranch-w2v: image side AlexNet frozen up to fc7, its fc8 (4096 -> 128) trained, 96 × 96 px input, "
            "weights random(seed=0) (not pretrained)") in text
    assert "KCCA: image side kernel over AlexNet fc7 features, 96 × 96 px input" in text
    assert "random(seed=0) (not pretrained)" in text and "pipeline demonstration" in text
    assert "trained on this catalogue's training texts" in text and "KCCA: exact KCCA" in text
    # the CLIP-feature variant is not presented as Rubio's model
    assert "TwoBranch-w2v-CLIPfeat" not in text
    # another branch ran: the box says so, and no longer claims AlexNet
    feats = dataclasses.replace(cfg, xmodal=dataclasses.replace(cfg.xmodal, image_branch="features"))
    text = xr.not_a_reproduction(_records(feats, alexnet=CLIP_RANDOM))
    assert "image side MLP over CLIP ViT-B-32 image features" in text and "AlexNet frozen" not in text
    # pretrained weights and vectors: named, and no demonstration sentence
    real = load_config("xmarket")
    text = xr.not_a_reproduction(_records(real, alexnet=IMAGENET_ALEXNET, w2v=W2V_GOOGLE))
    assert "ImageNet (IMAGENET1K_V1) (pretrained)" in text and "227 × 227 px input" in text
    assert "pretrained file GoogleNews-vectors-negative300.bin" in text and "demonstration" not in text
    assert "No row of their models has run" in xr.not_a_reproduction([])


def test_what_ran_table_marks_whose_rows_and_queries():
    cfg = load_config("embedded")
    frame = xr.what_ran_frame(_records(cfg)).set_index("model")
    assert frame.loc["TwoBranch-w2v", "whose"] == "Rubio et al. (2017)"
    assert frame.loc["TwoBranch-w2v-CLIPfeat", "whose"] == frame.loc["CLIP", "whose"] == "our variant"
    assert frame.loc["CLIP", "query"] == "title" and frame.loc["KCCA", "query"] == "title and attributes"
    assert frame.loc["KCCA", "KCCA"] == "exact" and frame.loc["TwoBranch-w2v", "image input"] == "96 px"
    assert frame.loc["TwoBranch-w2v-CLIPfeat", "image branch"].startswith("MLP over CLIP")
    table = xr.table_beside_rubio(_records(cfg)).set_index("model")
    assert table.loc["TwoBranch-w2v", "whose"] == "Rubio et al. (2017)" and table.loc["CLIP-heads", "whose"] == "—"
    assert "KCCA-Nystroem" not in table.index  # a variant shows only once it has run
    nys = _record("KCCA-Nystroem", cfg, RANDOM_ALEXNET, W2V_CATALOGUE, {"nystroem_components": 256})
    table = xr.table_beside_rubio(_records(cfg) + [nys]).set_index("model")
    assert table.loc["KCCA-Nystroem", "whose"] == "our variant"
    assert xr.what_ran_frame([nys])["KCCA"][0].startswith("approximate (Nystroem, 256 landmarks")


@pytest.mark.parametrize("model", ["TwoBranch-BoW", "TwoBranch-TFIDF"])
def test_bag_of_words_rows_say_counts_or_tfidf(model):
    cfg = load_config("embedded")
    ran = what_ran(model, cfg, RANDOM_ALEXNET, {"text": "bag of words", "dim": 812}, None, ["title", "attributes"])
    assert ran["text"]["representation"] == f"bag of words ({'counts' if model.endswith('BoW') else 'TF-IDF'}, " \
                                            "812-word vocabulary)"
