"""OpenAI CLIP weights: the architecture the tag needs (QuickGELU), the checkpoint's identity, the cache key.

Offline: a checkpoint file is placed in a temporary Hugging Face hub cache (where open_clip looks
for ``timm/vit_base_patch32_clip_224.openai``) and open_clip's weight load is intercepted, so the
whole of :func:`cti_repro.features.load_clip` runs except reading the tensors.
"""

import hashlib

import pytest

from cti_repro import clip_weights, features


def _place_in_hub_cache(root, repo: str, filename: str, data: bytes):
    folder = root / f"models--{repo.replace('/', '--')}"
    snap = folder / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snap.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(snap.name)
    (snap / filename).write_bytes(data)
    return snap / filename


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc
    import open_clip.factory

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    loaded = []
    monkeypatch.setattr(open_clip.factory, "load_checkpoint",
                        lambda model, path, **kw: loaded.append((model, str(path))))
    return tmp_path / "hub", loaded


def test_openai_tag_builds_quickgelu_and_records_the_checkpoint(hub):
    root, loaded = hub
    assert clip_weights.clip_pretrained_cfg("ViT-B-32", "openai")["quick_gelu"] is True  # open_clip's own config
    ckpt = _place_in_hub_cache(root, "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors",
                               b"not really weights")
    assert clip_weights.cached_checkpoint("ViT-B-32", "openai") == ckpt
    net, _, _, ident = features.load_clip("ViT-B-32", "openai", allow_random=False)
    assert loaded and loaded[0][1] == str(ckpt)  # open_clip loaded exactly this file
    assert ident["pretrained"] is True
    assert ident["architecture"] == {"name": "ViT-B-32", "activation": "QuickGELU",
                                     "activation_from": "open_clip's pretrained config of tag openai"}
    assert ident["checkpoint"] == str(ckpt) and ident["sha256"] == hashlib.sha256(b"not really weights").hexdigest()


def test_a_gelu_tag_keeps_gelu(hub):
    root, loaded = hub
    tag = "laion2b_s34b_b79k"
    assert not clip_weights.clip_pretrained_cfg("ViT-B-32", tag).get("quick_gelu", False)
    _place_in_hub_cache(root, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors", b"x")
    _, _, _, ident = features.load_clip("ViT-B-32", tag, allow_random=False)
    assert ident["architecture"]["activation"] == "GELU" and ident["pretrained"] is True


def test_random_weights_record_gelu_and_no_checkpoint(hub):
    _, _, _, ident = features.load_clip("ViT-B-32", "openai", allow_random=True)  # nothing in the cache
    assert ident["pretrained"] is False and "checkpoint" not in ident
    assert ident["architecture"]["activation"] == "GELU"  # random weights: open_clip's default config


def test_cache_key_changes_when_real_weights_appear(hub):
    root, _ = hub
    before = features.image_weights_key("ViT-B-32", "openai")
    assert before["weights"] == "random" and before["quick_gelu"] is True
    assert before["preprocess"]["image_size"] == 224 and before["preprocess"]["mean"]
    _place_in_hub_cache(root, "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors", b"w" * 10)
    after = features.image_weights_key("ViT-B-32", "openai")
    assert after["weights"]["file"] == "open_clip_model.safetensors" and after["weights"]["size"] == 10
    assert after != before


def test_a_batch_resolves_the_key_once_for_the_processes_it_starts(hub):
    import json
    import os
    import subprocess
    import sys

    from cti_repro.clip_weights import KEY_ENV, exported_key

    root, _ = hub
    want = features.image_weights_key("ViT-B-32", "openai")
    probe = ("import json, sys; from cti_repro.clip_weights import image_weights_key; "
             "k = image_weights_key('ViT-B-32', 'openai'); other = image_weights_key('Tiny-ViT-32', 'none'); "
             "print(json.dumps([k, 'open_clip' in sys.modules]))")
    assert KEY_ENV not in os.environ
    with exported_key("ViT-B-32", "openai") as env:
        assert json.loads(env[KEY_ENV])["key"] == want
        # a row process: the same key, and the other model's key still resolved by open_clip
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=os.environ)
        key, imported = json.loads(out.stdout)
        assert key == want and imported  # Tiny-ViT-32 is not the exported model: open_clip resolved it
        fast = probe.replace("other = image_weights_key('Tiny-ViT-32', 'none'); ", "")
        key, imported = json.loads(subprocess.run([sys.executable, "-c", fast], capture_output=True, text=True,
                                                  check=True, env=os.environ).stdout)
        assert key == want and not imported  # the exported model: no open_clip import at all
    assert KEY_ENV not in os.environ  # restored
    # resolved afresh on entry: weights placed since then are seen
    _place_in_hub_cache(root, "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors", b"w" * 10)
    with exported_key("ViT-B-32", "openai") as env:
        assert json.loads(env[KEY_ENV])["key"]["weights"]["size"] == 10


def test_a_malformed_exported_key_is_ignored(hub, monkeypatch):
    from cti_repro.clip_weights import KEY_ENV

    want = features.image_weights_key("ViT-B-32", "openai")
    monkeypatch.setenv(KEY_ENV, "{not json")
    assert features.image_weights_key("ViT-B-32", "openai") == want


# ---- the activation of a local checkpoint file ------------------------------------------------
def _state_dict_file(path):
    import torch

    torch.save({"visual.proj": torch.zeros(2, 2)}, path)  # a plain state dict: no word of its activation
    return path


def test_a_state_dict_file_is_refused_without_an_explicit_activation(hub, tmp_path):
    from cti_repro.config.schema import ConfigError

    ckpt = _state_dict_file(tmp_path / "vit_b32_openai.pt")
    for call in (lambda: features.load_clip("Tiny-ViT-32", str(ckpt), allow_random=True),  # not "unavailable"
                 lambda: features.image_weights_key("Tiny-ViT-32", str(ckpt))):
        with pytest.raises(ConfigError, match=r"vit_b32_openai\.pt.*encoders\.image\.quick_gelu: true"):
            call()


@pytest.mark.parametrize("quick, activation", [(True, "QuickGELU"), (False, "GELU")])
def test_an_explicit_quick_gelu_decides_a_files_activation_and_is_recorded(hub, tmp_path, quick, activation):
    _, loaded = hub
    ckpt = _state_dict_file(tmp_path / "weights.pt")
    _, _, _, ident = features.load_clip("Tiny-ViT-32", str(ckpt), allow_random=False, quick_gelu=quick)
    assert loaded and loaded[-1][1] == str(ckpt) and ident["pretrained"] is True
    assert ident["architecture"] == {"name": "Tiny-ViT-32", "activation": activation,
                                     "activation_from": "encoders.image.quick_gelu"}
    assert features.image_weights_key("Tiny-ViT-32", str(ckpt), quick)["quick_gelu"] is quick  # in the cache key


def test_openais_torchscript_release_format_means_quickgelu(hub, tmp_path):
    import torch

    ckpt = tmp_path / "ViT-B-32.pt"  # clip.load's format: a TorchScript archive
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(ckpt))
    assert clip_weights.checkpoint_quick_gelu(ckpt)[0] is True
    _, _, _, ident = features.load_clip("Tiny-ViT-32", str(ckpt), allow_random=False)
    assert ident["architecture"]["activation"] == "QuickGELU"
    assert ident["architecture"]["activation_from"].startswith("TorchScript archive")
    assert features.image_weights_key("Tiny-ViT-32", str(ckpt))["quick_gelu"] is True


@pytest.mark.parametrize("model_cfg, activation", [({"embed_dim": 64, "quick_gelu": True}, "QuickGELU"),
                                                   ({"embed_dim": 64}, "GELU")])
def test_an_open_clip_config_beside_the_file_decides_its_activation(hub, tmp_path, model_cfg, activation):
    import json

    ckpt = _state_dict_file(tmp_path / "open_clip_pytorch_model.bin")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
    _, _, _, ident = features.load_clip("Tiny-ViT-32", str(ckpt), allow_random=False)
    assert ident["architecture"]["activation"] == activation
    assert ident["architecture"]["activation_from"] == "open_clip_config.json beside the checkpoint"


def test_the_cli_refuses_a_state_dict_file_in_one_line(tmp_path, capsys):
    from cti_repro.cli import main
    from tests.smoke import smoke_config

    ckpt = _state_dict_file(tmp_path / "weights.pt")
    code = main(["run", "--setting", "most_specific", "--model", "CLIP", "--profile", "smoke",
                 "--config", str(smoke_config(tmp_path)), "--set", f"encoders.image.pretrained={ckpt}"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the synthetic catalogue's progress bar
    assert code == 2 and "Traceback" not in err and err.count("cti-repro: error:") == 1
    assert last.startswith("cti-repro: error: encoders.image.pretrained: ") and "encoders.image.quick_gelu" in last
