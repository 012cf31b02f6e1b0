from pathlib import Path

import pytest
import yaml

from cti_repro.config import ConfigError, available_profiles, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_repository_profiles_load():
    assert set(available_profiles(ROOT / "_config.yml")) >= {"embedded", "smoke", "xmarket"}
    for name in ("embedded", "smoke", "xmarket"):
        cfg = load_config(name, ROOT / "_config.yml")
        assert cfg.profile == name
        assert set(cfg.train.batch_size) == {"all", "most_general", "most_specific"}


def test_paper_hyper_parameters_in_defaults():
    cfg = load_config("xmarket", ROOT / "_config.yml")
    assert cfg.train.batch_size == {"all": 128, "most_general": 8, "most_specific": 128}
    assert (cfg.train.epochs, cfg.train.lr, cfg.train.weight_decay) == (30, 1e-3, 1e-3)
    assert (cfg.train.plateau_patience, cfg.train.plateau_factor) == (1, 0.8)
    assert (cfg.loss.tau, cfg.loss.lambda_, cfg.model.dim) == (1.0, 0.5, 256)
    assert (cfg.encoders.image.model, cfg.encoders.image.pretrained) == ("ViT-B-32", "openai")
    assert cfg.encoders.image.allow_random is False
    assert cfg.labels.demonstration is False
    assert load_config("embedded", ROOT / "_config.yml").labels.demonstration is True


def _write(tmp_path, profile_body):
    p = tmp_path / "c.yml"
    p.write_text(yaml.safe_dump({"defaults": {}, "profiles": {"x": profile_body}}))
    return p


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"train": {"epochs": "ten"}}, "profiles.x.train.epochs: expected an integer"),
        ({"train": {"epocs": 3}}, "profiles.x.train.epocs: unknown field"),
        ({"loss": {"lambda": 1.5}}, "profiles.x.loss.lambda: must be in [0, 1]"),
        ({"split": {"train": 0.9}}, "profiles.x.split: train/val/test"),
        ({"data": {"source": "web"}}, "profiles.x.data.source"),
        ({"train": {"batch_size": {"all": 8}}}, "profiles.x.train.batch_size"),
        ({"encoders": {"clip_prompt": "a photo"}}, "encoders.clip_prompt"),
    ],
)
def test_bad_values_name_the_field(tmp_path, body, needle):
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_config("x", path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_profile_and_missing_file(tmp_path):
    path = _write(tmp_path, {})
    with pytest.raises(ConfigError, match="no such profile"):
        load_config("nope", path)
    with pytest.raises(ConfigError, match="not found"):
        load_config("x", tmp_path / "missing.yml")


def test_hash_ignores_output_folders_but_not_hyper_parameters(tmp_path):
    a = load_config("x", _write(tmp_path, {"results_dir": "r1"}))
    b = load_config("x", _write(tmp_path, {"results_dir": "r2", "cache_dir": "c2"}))
    c = load_config("x", _write(tmp_path, {"train": {"lr": 0.01}}))
    assert a.hash() == b.hash() != c.hash()


# ---- issue 9: values checked at load, naming the field -----------------------------------------
import re  # noqa: E402

import pytest as _pytest  # noqa: E402


@_pytest.mark.parametrize("override, field", [
    ("encoders: {image: {batch_size: 0}}", "encoders.image.batch_size"),
    ("encoders: {text: {batch_size: -4}}", "encoders.text.batch_size"),
    ("encoders: {image: {num_workers: -1}}", "encoders.image.num_workers"),
    ("train: {weight_decay: -0.1}", "train.weight_decay"),
    ("train: {plateau_factor: 1.0}", "train.plateau_factor"),
    ("train: {plateau_factor: 0}", "train.plateau_factor"),
    ("bm25: {k1: -1}", "bm25.k1"),
    ("bm25: {b: 1.5}", "bm25.b"),
    ("encoders: {clip_prompt: 'a {} of {}'}", "encoders.clip_prompt"),
    ("encoders: {clip_prompt: 'a {name}'}", "encoders.clip_prompt"),
    ("encoders: {clip_prompt: 'a {} {'}", "encoders.clip_prompt"),
    ("encoders: {clip_prompt: 'a {!r}'}", "encoders.clip_prompt"),
    ("results_dir: afile", "results_dir"),
])
def test_bad_values_are_refused_at_load_naming_the_field(tmp_path, override, field):
    from cti_repro.config import ConfigError, load_config

    (tmp_path / "afile").write_text("x")
    (tmp_path / "c.yml").write_text(f"defaults: {{}}\nprofiles:\n  p: {{{override}}}\n")
    with _pytest.raises(ConfigError, match=rf"c\.yml: profiles\.p\.{re.escape(field)}: "):
        load_config("p", tmp_path / "c.yml")


def test_literal_braces_and_a_plain_prompt_are_fine(tmp_path):
    from cti_repro.config import load_config

    (tmp_path / "c.yml").write_text("defaults: {}\nprofiles:\n  p: {encoders: {clip_prompt: 'a photo of a {} {{x}}'}}\n")
    assert load_config("p", tmp_path / "c.yml").encoders.clip_prompt.format("mug") == "a photo of a mug {x}"


def test_non_utf8_config_and_path_like_profile_names(tmp_path):
    from cti_repro.config import ConfigError, load_config

    (tmp_path / "c.yml").write_bytes(b"defaults: {}\nprofiles:\n  p: {labels: {demonstration: \xff}}\n")
    with _pytest.raises(ConfigError, match=r"c\.yml: not UTF-8"):
        load_config("p", tmp_path / "c.yml")
    (tmp_path / "d.yml").write_text("defaults: {}\nprofiles:\n  '..': {}\n  'a/b': {}\n")
    for name in ("..", "a/b", "../../etc"):
        with _pytest.raises(ConfigError, match="profile"):
            load_config(name, tmp_path / "d.yml")
