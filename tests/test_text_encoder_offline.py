"""A text encoder that is neither rebuilt nor cached: one line that names `cti-repro models mpnet`."""

import pytest

from cti_repro import encoders
from cti_repro import offline_models as om


def _offline_loader(*args, **kwargs):
    # what transformers raises offline when the hub copy is not cached
    raise OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them\n"
                  "in the cached files. Check your internet connection.")


@pytest.fixture
def no_mpnet(tmp_path, monkeypatch):
    import sentence_transformers

    monkeypatch.setattr(om, "default_mpnet_dir", lambda: tmp_path / "no-mpnet")
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", _offline_loader)
    return tmp_path


def test_hub_mpnet_offline_names_the_rebuild_command(no_mpnet):
    with pytest.raises(encoders.WeightsUnavailableError) as info:
        encoders.load_text_encoder(om.MPNET_HUB_NAME)
    msg = str(info.value)
    assert "cti-repro models mpnet" in msg and str(no_mpnet / "no-mpnet") in msg and "\n" not in msg
    assert isinstance(info.value.__cause__, OSError)


def test_other_hub_name_gets_its_own_advice(no_mpnet):
    with pytest.raises(encoders.WeightsUnavailableError, match="encoders.text.model") as info:
        encoders.load_text_encoder("someone/some-model")
    assert "\n" not in str(info.value)


def test_broken_local_folder_keeps_its_own_error(no_mpnet):
    with pytest.raises(OSError, match="couldn't connect"):  # a folder: not the hub advice
        encoders.load_text_encoder(str(no_mpnet))


def test_cli_prints_one_line_exit_2(no_mpnet, capsys):
    from cti_repro.cli import main

    t = no_mpnet
    code = main(["run", "--profile", "smoke", "--setting", "most_specific", "--model", "MPNet",
                 "--set", f"encoders.text.model={om.MPNET_HUB_NAME}", "--set", f"data.dir={t / 'data'}",
                 "--set", f"cache_dir={t / 'cache'}", "--out", str(t / 'out')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("cti-repro: error: text encoder ") and "cti-repro models mpnet" in err[-1]
