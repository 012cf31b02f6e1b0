"""Image features in shards (``cti_repro.run.shards``): bounds, the assembled cache equals the
unsharded one to the bit, a missing or corrupt shard is recomputed alone.

A 48-product synthetic catalogue, Tiny-ViT-32 with random weights, batches of 8: 3 shards of 16.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from cti_repro.config import load_config
from cti_repro.features import _part_key, feature_cache_dir, load_features
from cti_repro.run import shards as sh
from tests.run.test_batch import smoke_config


def small_image_config(base: Path) -> Path:
    path = smoke_config(base)
    raw = yaml.safe_load(path.read_text())
    prof = raw["profiles"]["smoke"]
    prof["data"]["synthetic"] = {"products": 48, "seed": 0}
    prof["encoders"]["image"]["batch_size"] = 8
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def imgs(tmp_path_factory):
    from cti_repro.data.prepare import prepare_catalogue

    base = tmp_path_factory.mktemp("shards")
    cfg = load_config("smoke", small_image_config(base))
    catalogue = prepare_catalogue(cfg)
    assert len(catalogue) == 48
    plain = load_features(cfg, catalogue, parts=("image",), device="cpu")  # the unsharded reference
    key = _part_key(cfg, catalogue, "image")
    return SimpleNamespace(base=base, cfg=cfg, catalogue=catalogue, key=key, plain=np.asarray(plain["image"]),
                           plain_bytes=(feature_cache_dir(cfg) / f"image-{key}.npy").read_bytes())


def with_cache(cfg, folder: Path):
    return dataclasses.replace(cfg, cache_dir=str(folder))


def test_shard_bounds():
    assert sh.shard_bounds(100, 3, 16) == [(0, 48), (48, 96), (96, 100)]  # 7 batches: 3 + 3 + 1
    assert sh.shard_bounds(96, 3, 16) == [(0, 32), (32, 64), (64, 96)]
    assert sh.shard_bounds(10, 4, 16) == [(0, 10)]  # one batch: one shard
    assert sh.shard_bounds(64, 1, 16) == [(0, 64)]
    assert sh.shard_bounds(0, 2, 16) == [(0, 0)]
    with pytest.raises(ValueError, match="--shards must be at least 1"):
        sh.shard_bounds(10, 0, 16)


def test_corrupt_or_missing_shard_recomputed_alone(imgs):
    cfg = with_cache(imgs.cfg, imgs.base / "cache_sharded")
    root = feature_cache_dir(cfg)
    assert sh.image_shards(cfg, imgs.catalogue, 3, device="cpu") == [0, 1, 2]
    files = [sh.shard_files(root, imgs.key, i, 3) for i in range(3)]
    assert sh.image_shards(cfg, imgs.catalogue, 3, device="cpu") == []  # all valid: nothing to do
    first = files[0][0].stat().st_mtime_ns
    raw = bytearray(files[1][0].read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit in the data: same shape, wrong checksum
    files[1][0].write_bytes(bytes(raw))
    files[2][0].unlink()
    assert sh.image_shards(cfg, imgs.catalogue, 3, device="cpu") == [1, 2]
    assert files[0][0].stat().st_mtime_ns == first  # the valid shard was not rewritten
    files[2][1].write_text("{not json")  # a broken sidecar
    assert sh.image_shards(cfg, imgs.catalogue, 3, device="cpu") == [2]

    final = sh.assemble_image(cfg, imgs.catalogue, 3)
    assert final.read_bytes() == imgs.plain_bytes  # same header, same bits
    assert not list(root.glob("image-*.shard*"))  # shards removed once assembled
    fs = load_features(cfg, imgs.catalogue, parts=("image",), device="cpu")
    assert fs.cache_hits == ["image"] and isinstance(fs["image"], np.memmap)
    assert np.array_equal(fs["image"], imgs.plain)


def test_assemble_refuses_an_incomplete_set(imgs):
    cfg = with_cache(imgs.cfg, imgs.base / "cache_incomplete")
    sh.image_shards(cfg, imgs.catalogue, 2, device="cpu")
    npy, _ = sh.shard_files(feature_cache_dir(cfg), imgs.key, 1, 2)
    npy.write_bytes(npy.read_bytes()[:100])  # truncated
    with pytest.raises(RuntimeError, match="shard001of002.npy: image shard missing or corrupt"):
        sh.assemble_image(cfg, imgs.catalogue, 2)
    assert sh.image_shards(cfg, imgs.catalogue, 2, device="cpu") == [1]
    assert sh.assemble_image(cfg, imgs.catalogue, 2).read_bytes() == imgs.plain_bytes


# ---- the command line ------------------------------------------------------------------------
def test_cli_features_and_reproduce_flags(monkeypatch, tmp_path, capsys):
    from cti_repro import cli
    from cti_repro.features import FeatureSet
    from cti_repro.run import batch

    calls = {}

    def fake_extract(cfg, catalogue, **kw):
        calls["features"] = kw
        if kw["shards"] == 13:
            raise RuntimeError("1 of 13 image shards failed: shard 4: WorkerCrashedError")
        return FeatureSet(arrays={"image": np.zeros((len(catalogue), 4), np.float32)}, cache_hits=["image"])

    monkeypatch.setattr(sh, "extract_features", fake_extract)
    monkeypatch.setattr(batch, "reproduce", lambda **kw: calls.setdefault("reproduce", kw) is None)
    config = str(small_image_config(tmp_path))
    assert cli.main(["features", "--profile", "smoke", "--config", config, "--shards", "3", "--executor", "ray",
                     "--address", "auto", "--retries", "5"]) == 0
    assert calls["features"] == {"shards": 3, "executor": "ray", "address": "auto", "retries": 5}
    assert '"image": [\n      48,\n      4\n    ]' in capsys.readouterr().out
    assert cli.main(["features", "--profile", "smoke", "--config", config, "--shards", "13"]) == 1
    assert "image shards failed: shard 4" in capsys.readouterr().err
    cli.main(["reproduce", "--profile", "smoke", "--executor", "ray", "--address", "10.0.0.1:6379", "--retries", "0",
              "--workers", "3"])
    assert {k: calls["reproduce"][k] for k in ("executor", "address", "retries", "workers")} == {
        "executor": "ray", "address": "10.0.0.1:6379", "retries": 0, "workers": 3}
