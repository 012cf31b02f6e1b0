import dataclasses

import numpy as np
import pytest
from PIL import Image

from cti_repro.config import load_config
from cti_repro.data.catalogue import Catalogue, Product
from cti_repro.features import (
    PARTS,
    WeightsUnavailableError,
    load_clip,
    load_features,
    mean_attribute_embeddings,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("cat")
    (root / "images").mkdir()
    prods = []
    for i, colour in enumerate(["red", "green", "blue", "red", "green"]):
        Image.new("RGB", (40, 40), colour).save(root / "images" / f"p{i}.png")
        prods.append(Product(f"p{i}", f"{colour} kettle {i}", (f"Colour: {colour}", "Material: steel"),
                             ("Home", "Kitchen", "Kettles"), f"images/p{i}.png"))
    (root / "images" / "p3.png").write_bytes(b"not a png")           # corrupt
    prods.append(Product("p5", "no image", ("Material: steel",), ("Home", "Mugs"), "images/missing.png"))
    cat = Catalogue.from_products(prods)
    cat.save(root)
    cfg = load_config("smoke")
    cfg = dataclasses.replace(cfg, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return Catalogue.load(root), cfg


def test_attribute_mean_is_eq5():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    idx = {"a": 0, "b": 1, "c": 2}
    out = mean_attribute_embeddings([["a", "b"], ["c"], []], emb, idx)
    np.testing.assert_allclose(out, [[0.5, 0.5], [1.0, 1.0], [0.0, 0.0]])


def test_compute_then_cache_hit(tiny):
    cat, cfg = tiny
    fs = load_features(cfg, cat, PARTS, device="cpu")
    assert fs.cache_hits == []
    n = len(cat)
    assert fs["image"].shape == (n, 64) and fs["title"].shape == (n, 384) and fs["attributes"].shape == (n, 384)
    assert fs["category"].shape == (len(fs.categories), 384) and fs["clip_category"].shape[0] == len(fs.categories)
    # corrupt and missing images are zero rows and counted, not fatal
    assert fs.stats["images_unreadable"] == 2
    assert not fs["image"][3].any() and not fs["image"][5].any() and fs["image"][0].any()
    # same colour -> the same image features (up to float32 rounding that depends on the row's
    # position in the batch, ~5e-7 here); another colour -> clearly different features
    np.testing.assert_allclose(fs["image"][1], fs["image"][4], atol=1e-5)  # both green
    assert np.abs(fs["image"][0] - fs["image"][1]).max() > 1e-2            # red vs green
    assert fs.identities["image"]["pretrained"] is False
    assert fs.identities["text"]["name"].endswith("all-MiniLM-L6-v2")
    again = load_features(cfg, cat, PARTS, device="cpu")
    assert sorted(again.cache_hits) == sorted(PARTS)
    for p in PARTS:
        np.testing.assert_array_equal(np.asarray(again[p]), np.asarray(fs[p]))
    assert again.stats["images_unreadable"] == 2


def test_title_features_are_semantic(tiny):
    cat, cfg = tiny
    fs = load_features(cfg, cat, ("title",), device="cpu")
    t = np.asarray(fs["title"])
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    # "red kettle 0" is closer to "red kettle 3" than to "no image"
    assert t[0] @ t[3] > t[0] @ t[5]


def test_cache_key_changes_with_catalogue(tiny, tmp_path):
    cat, cfg = tiny
    changed = Catalogue(cat.frame.assign(title=cat.frame["title"] + " x"), cat.root)
    fs = load_features(cfg, changed, ("title",), device="cpu")
    assert fs.cache_hits == []


def test_missing_pretrained_weights_fail_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="allow_random"):
        load_clip("Tiny-ViT-32", "openai", allow_random=False)
    net, _, _, ident = load_clip("Tiny-ViT-32", "openai", allow_random=True, seed=5)
    assert ident["pretrained"] is False and "random" in ident["weights"]


def test_random_weights_are_seeded():
    import torch

    a = load_clip("Tiny-ViT-32", "none", allow_random=True, seed=1)[0]
    b = load_clip("Tiny-ViT-32", "none", allow_random=True, seed=1)[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("damage", ["truncate", "reverse_rows", "wrong_shape", "broken_meta", "other_catalogue"])
def test_damaged_cache_part_is_detected_named_and_recomputed(tiny, tmp_path, capsys, damage):
    import json

    from cti_repro.features import feature_cache_dir

    cat, cfg = tiny
    cfg = dataclasses.replace(cfg, cache_dir=str(tmp_path / "cache"))
    good = np.asarray(load_features(cfg, cat, ("title",), device="cpu")["title"]).copy()
    (npy,) = feature_cache_dir(cfg).glob("title-*.npy")
    meta = npy.with_suffix(".json")
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:-100])
    elif damage == "reverse_rows":
        np.save(npy, good[::-1].copy())
    elif damage == "wrong_shape":
        np.save(npy, good[:-1].copy())
    elif damage == "broken_meta":
        meta.write_text('{"shape": [6, ')
    else:
        m = json.loads(meta.read_text())
        meta.write_text(json.dumps({**m, "catalogue": "0" * 16}))
    capsys.readouterr()
    fs = load_features(cfg, cat, ("title",), device="cpu")
    assert fs.cache_hits == []  # not trusted: recomputed
    err = capsys.readouterr().err
    named = meta if damage in ("broken_meta", "other_catalogue") else npy
    assert f"warning: feature cache {named}" in err and "recomputing title" in err
    np.testing.assert_array_equal(np.asarray(fs["title"]), good)
    assert load_features(cfg, cat, ("title",), device="cpu").cache_hits == ["title"]  # and it is good again


def test_ragged_attribute_parts(tiny):
    from cti_repro.features import RAGGED_PARTS, padded_rows

    cat, cfg = tiny
    fs = load_features(cfg, cat, ("attributes", *RAGGED_PARTS), device="cpu")
    vals, index, offsets = (np.asarray(fs[p]) for p in RAGGED_PARTS)
    attrs = cat.attributes
    uniq = sorted({a for aa in attrs for a in aa})  # 4 strings: 3 colours + steel
    assert vals.shape == (len(uniq), 384) and vals.dtype == np.float32
    assert index.dtype == np.int32 and offsets.dtype == np.int64
    assert offsets.tolist() == [0, 2, 4, 6, 8, 10, 11] and len(index) == 11
    # product i's values are the embeddings of its own strings, and their mean is the cached eq. 5
    for i, aa in enumerate(attrs):
        rows = index[offsets[i]:offsets[i + 1]]
        assert [uniq[r] for r in rows] == list(aa)
        np.testing.assert_allclose(vals[rows].mean(0), np.asarray(fs["attributes"])[i], rtol=1e-5, atol=1e-6)
    assert isinstance(fs["attribute_values"], np.memmap)
    pad = padded_rows(index, offsets, np.array([5, 0]))
    assert pad.tolist() == [[uniq.index("Material: steel"), -1], index[0:2].tolist()]
    again = load_features(cfg, cat, RAGGED_PARTS, device="cpu")
    assert sorted(again.cache_hits) == sorted(RAGGED_PARTS)


def test_swapping_the_image_tower_by_config(tiny):
    # any open_clip architecture by name: a second tiny tower (patch 16, 112 px, 48-d) beside Tiny-ViT-32
    cat, cfg = tiny
    other = dataclasses.replace(cfg, encoders=dataclasses.replace(
        cfg.encoders, image=dataclasses.replace(cfg.encoders.image, model="Tiny-ViT-16")))
    a = load_features(cfg, cat, ("image", "clip_category"), device="cpu")
    b = load_features(other, cat, ("image", "clip_category"), device="cpu")
    assert a["image"].shape == (len(cat), 64) and b["image"].shape == (len(cat), 48)
    assert b["clip_category"].shape[1] == 48
    assert b.identities["image"]["name"] == "Tiny-ViT-16" and "image" not in b.cache_hits  # keyed by the tower
    files = sorted(p.name.split("-")[0] for p in (cfg.path(cfg.cache_dir) / "features").glob("image-*.npy"))
    assert files == ["image", "image"]
    assert sorted(load_features(other, cat, ("image",), device="cpu").cache_hits) == ["image"]


def test_ragged_parts_are_cached_with_the_attributes(tiny, tmp_path):
    # the features stage asks for PARTS; an attention row later needs the ragged parts: computed
    # with the attribute strings, they must be cached then, not re-encoded by the row
    from cti_repro.features import RAGGED_PARTS

    cat, cfg = tiny
    cfg = dataclasses.replace(cfg, cache_dir=str(tmp_path))
    load_features(cfg, cat, ("attributes",), device="cpu")
    again = load_features(cfg, cat, RAGGED_PARTS, device="cpu")
    assert sorted(again.cache_hits) == sorted(RAGGED_PARTS)
    assert set(again.arrays) == set(RAGGED_PARTS)  # only what was asked for is returned


def test_clip_title_part_is_the_text_tower_of_each_title(tiny, tmp_path, monkeypatch):
    import cti_repro.features as features
    from cti_repro.run.xmodal.models import clip_title_features

    cat, cfg = tiny
    cfg = dataclasses.replace(cfg, cache_dir=str(tmp_path))
    fs = load_features(cfg, cat, ("clip_title",), device="cpu")
    ic = cfg.encoders.image
    net, _, tok, _ = load_clip(ic.model, ic.pretrained, ic.allow_random, "cpu")
    want = features.encode_clip_text(net, tok, cat.titles, device="cpu")
    np.testing.assert_allclose(np.asarray(fs["clip_title"]), want, rtol=1e-5, atol=1e-6)
    # the text-image rows read the cached part: no CLIP model is built again
    monkeypatch.setattr(features, "load_clip", lambda *a, **k: pytest.fail("clip_title recomputed"))
    arr, ident = clip_title_features(cfg, cat, "cpu")
    np.testing.assert_array_equal(np.asarray(arr), np.asarray(fs["clip_title"]))
    assert ident["name"] == ic.model
    # keyed like the image part: other weights on disk -> another cache file
    monkeypatch.setattr(features, "image_weights_key", lambda m, p, q=None: {"weights": {"file": "real.bin"}})
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        load_features(cfg, cat, ("clip_title",), device="cpu")


def test_clip_text_trimmed_to_the_last_eot_equals_the_full_forward():
    # the text tower is causal and pools the EOT token: the padding after it cannot change the
    # result, so running each batch only up to its longest text is the same function
    from cti_repro.encoders import _trimmable, encode_clip_text

    net, _, tok, _ = load_clip("Tiny-ViT-32", "none", True, "cpu")
    assert _trimmable(net)
    texts = ["a", "kettle", "red steel kettle with a very long name " * 3, "", "Home > Kitchen > Kettles", "mug"]
    full = encode_clip_text(net, tok, texts, batch_size=4, trim=False)
    cut = encode_clip_text(net, tok, texts, batch_size=4, trim=True)
    np.testing.assert_allclose(cut, full, rtol=1e-5, atol=1e-5)  # and in the caller's order
    assert np.abs(full[0] - full[1]).max() > 1e-3  # different texts, different vectors
    assert encode_clip_text(net, tok, []).shape == (0, 0)
