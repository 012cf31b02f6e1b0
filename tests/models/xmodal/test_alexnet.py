"""Rubio et al.'s image branch: AlexNet's 227 px input, its fc7 width, and its weights (cached, refused, random)."""

import numpy as np
import pytest
import torch

from cti_repro.config import load_config
from cti_repro.encoders import WeightsUnavailableError
from cti_repro.models.xmodal import alexnet as ax
from cti_repro.models.xmodal.two_branch import AlexNetBranch, Fc8Branch


def test_input_is_227_px_and_the_branch_takes_fc7s_width():
    assert ax.ALEXNET_INPUT == 227 and load_config("xmarket").xmodal.image_size == 227
    net, ident = ax.load_alexnet("random", seed=0)
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        assert net.features(x).shape[-2:] == (6, 6)  # 227 px is exactly the 6 x 6 map fc6 expects
        h = ax.fc7(net, x)
    assert h.shape == (2, ax.FC7_DIM) and (h >= 0).all()  # after fc7's ReLU
    assert Fc8Branch(h.shape[1], 128).fc8.in_features == ax.FC7_DIM
    assert AlexNetBranch(128).net.classifier[-1].in_features == ax.FC7_DIM
    assert ident["weights"] == "random(seed=0)" and ident["pretrained"] is False


def test_imagenet_weights_cached_else_refused_or_random_and_labelled(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no download attempt
    assert ax.imagenet_checkpoint().parent == tmp_path / "hub" / "checkpoints"
    assert ax.alexnet_weights_key("imagenet") == "random"
    with pytest.raises(WeightsUnavailableError, match="IMAGENET1K_V1"):
        ax.load_alexnet("imagenet", allow_random=False)
    _, ident = ax.load_alexnet("imagenet", allow_random=True, seed=3)
    assert ident["weights"] == "random(seed=3)" and not ident["pretrained"]
    # a cached checkpoint is loaded and recorded
    torch.manual_seed(7)
    from torchvision.models import alexnet

    state = alexnet(weights=None).state_dict()
    ax.imagenet_checkpoint().parent.mkdir(parents=True)
    torch.save(state, ax.imagenet_checkpoint())
    net, ident = ax.load_alexnet("imagenet", allow_random=False)
    assert ident["pretrained"] and ident["weights"] == "ImageNet (IMAGENET1K_V1)" and len(ident["sha256"]) == 64
    assert torch.equal(net.features[0].weight, state["features.0.weight"])
    assert ax.alexnet_weights_key("imagenet")["file"] == ax.imagenet_checkpoint().name  # the feature cache key moves


def test_profiles_real_path_refuses_random_offline_allows_it():
    assert load_config("xmarket").xmodal.alexnet.allow_random is False
    assert load_config("xmarket").xmodal.word2vec.path.endswith("word2vec-google-news-300.gz")
    emb = load_config("embedded").xmodal
    assert emb.alexnet.allow_random is True and emb.word2vec.path == "" and emb.image_branch == "alexnet_fc7"
    assert emb.bow.kind == "count"


def test_fc7_features_of_image_files_zero_for_unreadable(tmp_path):
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image")
    net, _ = ax.load_alexnet("random")
    out, ok, _ = ax.encode_fc7(net, [tmp_path / "a.png", tmp_path / "b.png", None], size=67, progress=False)
    assert out.shape == (3, ax.FC7_DIM) and ok.tolist() == [True, False, False]
    assert out[0].any() and not out[1:].any()
    with Image.open(tmp_path / "a.png") as im:
        want = ax.fc7(net, ax.preprocess(67)(im)[None]).detach().numpy()[0]
    np.testing.assert_allclose(out[0], want, rtol=1e-5, atol=1e-5)


def test_weights_key_names_torchvisions_file_without_importing_torchvision():
    import json
    import os
    import subprocess
    import sys

    from torchvision.models import AlexNet_Weights

    assert ax.IMAGENET_FILE == os.path.basename(AlexNet_Weights.IMAGENET1K_V1.url)
    # a text-image row computes this key for its feature cache; torchvision costs ~3 s to import
    probe = ("import json, sys; from cti_repro.models.xmodal.alexnet import alexnet_weights_key, imagenet_checkpoint; "
             "alexnet_weights_key('imagenet'); print(json.dumps([imagenet_checkpoint().name, 'torchvision' in sys.modules]))")
    name, imported = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                               check=True, env=os.environ).stdout)
    assert name == ax.IMAGENET_FILE and not imported
