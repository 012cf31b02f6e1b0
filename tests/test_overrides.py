"""`--set KEY=VALUE` overrides and the `ablations:` section (cti_repro.config, cti_repro.config.ablations)."""

from pathlib import Path

import pytest
import yaml

from cti_repro.config.ablations import load_ablations
from cti_repro.cli import main
from cti_repro.config import ConfigError, load_config, parse_overrides

ROOT = Path(__file__).resolve().parent.parent
CFG = ROOT / "_config.yml"


def test_overrides_apply_last_with_yaml_values():
    cfg = load_config("smoke", CFG, overrides=["loss.tau=0.1", "train.batch_size.most_general=4", "seeds=[3, 4]",
                                               "model.normalize_modalities=true", "loss.lambda=0.25"])
    assert cfg.loss.tau == 0.1 and cfg.train.batch_size == {"all": 32, "most_general": 4, "most_specific": 32}
    assert cfg.seeds == [3, 4] and cfg.model.normalize_modalities is True and cfg.loss.lambda_ == 0.25
    assert cfg.train.epochs == 3  # the profile is still applied underneath
    assert cfg.hash() != load_config("smoke", CFG).hash()
    # the mapping form and the later-wins rule
    assert parse_overrides(["loss.tau=2", "loss.tau=0.5"]) == {"loss.tau": 0.5}
    assert load_config("smoke", CFG, overrides={"loss.tau": 0.5}).loss.tau == 0.5


@pytest.mark.parametrize("bad,needle", [
    (["loss.taux=1"], "--set loss.taux: unknown field loss.taux (allowed:"),
    (["los.tau=1"], "--set los.tau: unknown field los"),
    (["loss.tau=abc"], "--set loss.tau: expected a number, got 'abc'"),
    (["loss.tau=-1"], "--set loss.tau=-1: must be > 0"),
    (["loss.tau"], "expected KEY=VALUE"),
    (["model.head=mlp"], "--set model.head='mlp': paper or batchnorm"),
    (["train.batch_size.all=1"], "--set train.batch_size.all=1: contrastive training needs batches of at least 2"),
    (["seeds=[0, x]"], "--set seeds[1]: expected an integer"),
    (["loss.tau.x=1"], "--set loss.tau.x: loss.tau is not a mapping"),
    (["profile=x"], "unknown field profile"),
])
def test_bad_overrides_name_the_key(bad, needle):
    with pytest.raises(ConfigError) as err:
        load_config("smoke", CFG, overrides=bad)
    assert needle in str(err.value)


def test_cli_set_error_is_one_line(capsys):
    code = main(["run", "--setting", "all", "--model", "BM25", "--profile", "smoke", "--config", str(CFG),
                 "--set", "loss.tau=zero"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "cti-repro: error: --set loss.tau: expected a number, got 'zero'"


def test_repository_ablations_are_valid():
    variants, default = load_ablations(CFG)
    assert {"tau_0.1", "tau_learnable", "similarity_dot", "modality_norm", "head_batchnorm", "loss_soft",
            "mask_same_label", "baselines_all_products"} <= set(variants)
    assert 1 <= len(default) <= 4 and set(default) <= set(variants)
    assert variants["baselines_all_products"].models == ("BM25", "MPNet", "CLIP")
    assert variants["tau_0.1"].models == ("CLIP-ITA",) and variants["tau_0.1"].overrides == {"loss.tau": 0.1}
    for v in variants.values():  # every variant builds a valid config for every profile
        for profile in ("embedded", "smoke", "xmarket"):
            load_config(profile, CFG, overrides=v.overrides)


@pytest.mark.parametrize("section,needle", [
    ({"variants": {"v": {"loss.tau": "hot"}}}, "ablations.variants.v: --set loss.tau: expected a number"),
    ({"variants": {"v": {"loss.tau": 0.1, "models": ["CLIP-X"]}}}, "ablations.variants.v.models: unknown model"),
    ({"run": ["w"], "variants": {"v": {"loss.tau": 0.1}}}, "ablations.run: no such variant(s) ['w']"),
    ({"bogus": 1}, "ablations: expected a mapping"),
])
def test_bad_ablations_name_the_field(tmp_path, section, needle):
    raw = yaml.safe_load(CFG.read_text())
    raw["ablations"] = section
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_ablations(path)
    assert needle in str(err.value) and str(path) in str(err.value)
