"""Hostile input, round two (issue 18), the data side: items 8, 9, 10, 13 and 15.

Kept apart from ``test_hostile_inputs.py`` (the config side adds its tests there). Each test
fails on the code before its fix. Everything is local: tiny catalogues, random-weight Tiny-ViT,
the MiniLM text encoder of the smoke profile, loopback addresses only, bounded in time.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cti_repro.config import load_config
from cti_repro.data.catalogue import Catalogue, Product


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cti-repro")]  # not tqdm
    assert len(err) == 1 and err[0].startswith("cti-repro: error: "), err
    return err[0]


def _catalogue(root: Path, attributes: bool = True, n: int = 4) -> Catalogue:
    """``n`` products with a small PNG each under ``root/images`` (attributes optional)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    prods = []
    for i in range(n):
        Image.new("RGB", (32, 32), ("red", "green", "blue", "white")[i % 4]).save(root / "images" / f"p{i}.png")
        prods.append(Product(f"p{i}", f"kettle {i}", (f"Colour: {i}",) if attributes else (),
                             ("Home", "Kettles" if i % 2 else "Mugs"), f"images/p{i}.png"))
    Catalogue.from_products(prods).save(root)
    return Catalogue.load(root)


def _cfg(cache: Path):
    return dataclasses.replace(load_config("smoke"), cache_dir=str(cache))


# ---- item 13: a catalogue in which no product has an attribute ----------------------------------
def test_no_attributes_anywhere_gives_zero_vectors_and_a_count(tmp_path):
    from cti_repro.features import RAGGED_PARTS, load_features

    cat = _catalogue(tmp_path / "cat", attributes=False)
    fs = load_features(_cfg(tmp_path / "cache"), cat, ("attributes", *RAGGED_PARTS), device="cpu")
    assert fs["attributes"].shape == (4, 384) and not np.asarray(fs["attributes"]).any()
    assert fs["attribute_values"].shape == (0, 384) and fs["attribute_index"].shape == (0,)
    assert list(fs["attribute_offsets"]) == [0, 0, 0, 0, 0]
    assert fs.stats["products_without_attributes"] == 4 and fs.stats["attributes_unique_encoded"] == 0
    again = load_features(_cfg(tmp_path / "cache"), cat, ("attributes",), device="cpu")  # the empty part caches
    assert again.cache_hits == ["attributes"] and again.stats["products_without_attributes"] == 4


def test_attribute_models_refuse_a_catalogue_without_attributes(tmp_path):
    from cti_repro.run.row import NoAttributesError, check_attributes

    cfg = _cfg(tmp_path / "cache")
    bare = _catalogue(tmp_path / "bare", attributes=False)
    for model in ("CLIP-IA", "CLIP-ITA"):
        with pytest.raises(NoAttributesError, match=r"no product of the 4 .* has an attribute; CLIP-I?T?A needs"):
            check_attributes(bare, cfg, model)
    for model in ("CLIP-I", "CLIP", "MPNet", "BM25"):
        check_attributes(bare, cfg, model)  # they read no attribute: they run
    check_attributes(_catalogue(tmp_path / "full"), cfg, "CLIP-IA")


# ---- item 15: disk full / read-only: the message names the file being written -------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_failed_atomic_write_names_its_path_and_leaves_nothing(tmp_path, monkeypatch, code):
    from cti_repro import io_utils

    target = tmp_path / "out" / "result.json"
    io_utils.atomic_write_json(target, {"old": True})

    def full(fd):
        raise OSError(code, os.strerror(code))  # what write()/fsync() raise: no file name

    monkeypatch.setattr(io_utils.os, "fsync", full)
    with pytest.raises(OSError) as info:
        io_utils.atomic_write_json(target, {"new": True})
    assert info.value.errno == code and str(target) in str(info.value)
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]  # no temporary left
    assert "old" in target.read_text()  # the previous file is intact


def test_read_only_folder_names_the_target_not_a_temporary(tmp_path, monkeypatch):
    import tempfile

    from cti_repro import io_utils

    target = tmp_path / "ro" / "catalogue.parquet"
    target.parent.mkdir()

    def read_only(dir, prefix, suffix):  # mkstemp's own error names its random temporary
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, prefix + "x1y2z3" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError, match="Read-only file system") as info:
        io_utils.atomic_write_bytes(target, b"x")
    assert info.value.filename == str(target) and "x1y2z3" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode-0555 folder")
def test_real_read_only_folder_names_the_target(tmp_path):
    from cti_repro.io_utils import atomic_write_text

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            atomic_write_text(folder / "page.md", "text")
        assert info.value.filename == str(folder / "page.md")
    finally:
        folder.chmod(0o755)


def test_cli_disk_full_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from cti_repro import io_utils
    from cti_repro.cli import main

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io_utils.os, "fsync", full)
    out = tmp_path / "synth"
    assert main(["data", "synthetic", "--out", str(out), "--products", "6"]) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line and str(out / "catalogue.parquet") in line


# ---- item 9: only regular files inside <catalogue>/images are read ------------------------------
def _hostile_image_catalogue(tmp_path: Path) -> tuple[Catalogue, Path]:
    """p0 a good image; then ../, absolute, symlink-out, fifo, /etc/passwd, a folder, a missing file."""
    root = tmp_path / "cat"
    (root / "images" / "sub").mkdir(parents=True)
    Image.new("RGB", (32, 32), "red").save(root / "images" / "p0.png")
    outside = tmp_path / "outside.png"
    Image.new("RGB", (32, 32), "blue").save(outside)
    (root / "images" / "link.png").symlink_to(outside)
    os.mkfifo(root / "images" / "fifo.png")
    rels = ["images/p0.png", "../outside.png", str(outside), "images/link.png", "images/fifo.png", "/etc/passwd",
            "images/sub", "images/gone.png", "images/../images/p0.png"]
    prods = [Product(f"p{i}", f"item {i}", ("Colour: red",), ("Home", "Mugs"), rel) for i, rel in enumerate(rels)]
    Catalogue.from_products(prods).save(root)
    return Catalogue.load(root), root


def test_image_paths_outside_the_folder_or_not_files_are_refused(tmp_path):
    cat, root = _hostile_image_catalogue(tmp_path)
    assert cat.image_path(0) == (root / "images" / "p0.png").resolve()
    assert cat.image_path(8) == cat.image_path(0)  # a detour that stays inside is fine
    assert [cat.image_path(i) for i in range(1, 8)] == [None] * 7
    assert cat.refused_images() == [1, 2, 3, 4, 5, 6]  # the missing file (7) is missing, not refused
    s = cat.stats()
    assert s["images_missing"] == 7 and s["images_refused"] == 6
    assert "images_refused" not in _catalogue(tmp_path / "plain").stats()  # shown only when there are some


def test_features_never_read_outside_images_nor_block_on_a_fifo(tmp_path, capsys):
    import threading

    from cti_repro.features import load_features

    cat, root = _hostile_image_catalogue(tmp_path)
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(fs=load_features(_cfg(tmp_path / "cache"), cat, ("image",),
                                                                           device="cpu")), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # blocked in open() of the fifo: release it (a writer that closes at once), then fail
        os.close(os.open(root / "images" / "fifo.png", os.O_WRONLY | os.O_NONBLOCK))
        worker.join(30)
        pytest.fail("the features stage blocked on a named pipe in images/")
    fs = out["fs"]
    img = np.asarray(fs["image"])
    assert img[0].any() and img[8].any()
    assert not img[1:8].any()  # outside files were not embedded as the products' images
    assert fs.stats["images_unreadable"] == 7 and fs.stats["images_refused"] == 6
    assert "6 image path(s) are not regular files inside" in capsys.readouterr().err


def test_open_regular_refuses_a_fifo_without_blocking(tmp_path):
    from cti_repro.encoders import open_regular

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        open_regular(tmp_path / "fifo")  # returns at once: nobody ever writes to this pipe
    (tmp_path / "ok").write_bytes(b"abc")
    with open_regular(tmp_path / "ok") as fh:
        assert fh.read() == b"abc"


# ---- item 10: concurrent `features --shards 4` on one cache; an honest rerun after a kill --------
def _shard_study(tmp_path: Path):
    """16 synthetic products, image batches of 4: exactly 4 shards of one batch each."""
    import yaml

    from cti_repro.data.prepare import prepare_catalogue
    from tests.smoke import smoke_config

    path = smoke_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["profiles"]["smoke"]["data"]["synthetic"] = {"products": 16, "seed": 0}
    raw["profiles"]["smoke"]["encoders"]["image"]["batch_size"] = 4
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = load_config("smoke", path)
    return path, cfg, prepare_catalogue(cfg)  # the catalogue exists before any features process starts


def _features_cli(config: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "cti_repro.cli", "features", "--profile", "smoke", "--config", str(config),
            "--shards", "4"]


def _only_final_parts(root: Path) -> None:
    names = sorted(p.name for p in root.iterdir())
    stray = [n for n in names if "shard" in n or n.startswith(".") or not n.endswith((".npy", ".json"))]
    assert not stray, stray


def test_second_features_process_waits_and_finds_the_part(tmp_path, monkeypatch):
    """Process B starts while this process (A) is between its shards. Before the fix B assembled
    and deleted every shard, and A then failed with "image shard missing or corrupt"."""
    import json
    import subprocess

    from cti_repro.features import feature_cache_dir
    from cti_repro.run import shards as sh

    config, cfg, cat = _shard_study(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    real = sh.compute_shard
    other: dict = {}

    def compute_then_start_b(cfg_, paths, npy, meta, start, stop, device=None):
        out = real(cfg_, paths, npy, meta, start, stop, device=device)
        if start == 4:  # A has shards 0 and 1 on disk: B starts now, and A goes on once B waits (or ends)
            b = subprocess.Popen(_features_cli(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env, cwd=tmp_path)
            killer = __import__("threading").Timer(300, b.kill)
            killer.start()
            seen = []
            while (line := b.stderr.readline()) and "waiting for it" not in line:
                seen.append(line)
            other.update(proc=b, killer=killer, waited="waiting for it" in line, early=seen)
        return out

    monkeypatch.setattr(sh, "compute_shard", compute_then_start_b)
    fs = sh.extract_features(cfg, cat, shards=4, device="cpu")
    b = other["proc"]
    out, err = b.communicate(timeout=300)
    other["killer"].cancel()
    assert b.returncode == 0, "".join(other["early"]) + err
    assert other["waited"]
    report = json.loads(out)
    assert "image" in report["cached"] and report["parts"]["image"] == [16, 64]  # B used A's part
    assert "image" not in fs.cache_hits and fs.stats["image_shards_computed"] == 4
    assert np.array_equal(np.asarray(fs["image"]), np.load(next(feature_cache_dir(cfg).glob("image-*.npy"))))
    _only_final_parts(feature_cache_dir(cfg))


def test_rerun_after_a_kill_reports_what_it_computed(tmp_path, capsys, monkeypatch):
    import json

    from cti_repro.cli import main
    from cti_repro.features import _part_key, feature_cache_dir
    from cti_repro.run import shards as sh

    config, cfg, cat = _shard_study(tmp_path)
    root, key = feature_cache_dir(cfg), _part_key(cfg, cat, "image")
    assert sh.image_shards(cfg, cat, 4, device="cpu") == [0, 1, 2, 3]
    with monkeypatch.context() as m:  # a full disk while assembling (item 15): named, nothing left, shards kept
        def full(fd, offset, length):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        m.setattr(sh.os, "posix_fallocate", full)
        with pytest.raises(OSError, match="No space left on device") as info:
            sh.assemble_image(cfg, cat, 4)
        assert info.value.filename == str(root / f"image-{key}.npy")
    assert not list(root.glob("*.assembling")) and not list(root.glob(f"image-{key}.npy"))
    assert sh.image_shards(cfg, cat, 4, device="cpu") == []  # the four shards are intact
    for i in (1, 2, 3):  # killed after its first shard
        for f in sh.shard_files(root, key, i, 4):
            f.unlink()
    assert main(["features", "--profile", "smoke", "--config", str(config), "--shards", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "image" not in report["cached"]
    assert (report["stats"]["image_shards_computed"], report["stats"]["image_shards_reused"]) == (3, 1)
    _only_final_parts(root)
    assert main(["features", "--profile", "smoke", "--config", str(config), "--shards", "4"]) == 0
    assert "image" in json.loads(capsys.readouterr().out)["cached"]  # now it is a cache hit


# ---- item 8: Ray --address where nothing (or no Ray) listens: one line, at once --------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _LoopbackServer:
    """A TCP server on 127.0.0.1 that accepts and then stays silent, or answers ``reply`` and closes."""

    def __init__(self, reply: bytes | None = None) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reply, self.conns = reply, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.reply is not None:
                conn.recv(64)
                conn.sendall(self.reply)
                conn.close()

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


def test_grpc_check_tells_silence_and_strangers_from_ray():
    import time

    from cti_repro.run.ray_executor import _grpc_problem

    assert _grpc_problem("127.0.0.1", _free_port(), 2).startswith("cannot connect")
    for reply, problem in ((None, "no answer"), (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not a Ray (gRPC) server")):
        server = _LoopbackServer(reply)
        t0 = time.monotonic()
        try:
            assert problem in _grpc_problem("127.0.0.1", server.port, 1.0)
        finally:
            server.close()
        assert time.monotonic() - t0 < 5
    settings = _LoopbackServer(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # what a gRPC server sends first
    try:
        assert _grpc_problem("127.0.0.1", settings.port, 2.0) is None
    finally:
        settings.close()


def _ray_features(config: Path, address: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "cti_repro.cli", "features", "--profile", "smoke", "--config", str(config),
            "--shards", "2", "--executor", "ray", "--address", address]


def test_ray_address_with_nothing_listening_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """Before: Ray's warnings every ~40 s for minutes, the address silently rewritten.

    In this process (a subprocess would pay ~10 s of imports): ``ray.init`` is replaced by one
    that fails the test at once, so code that reached it without the check fails instead of hanging.
    """
    ray = pytest.importorskip("ray")
    from cti_repro.cli import main

    def reached(*args, **kwargs):
        raise AssertionError(f"ray.init{args}{kwargs} reached without checking the address")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh CLI process
    monkeypatch.setattr(ray, "init", reached)
    config, _, _ = _shard_study(tmp_path)
    address = f"127.0.0.1:{_free_port()}"
    assert main(_ray_features(config, address)[3:]) == 2
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("cti-repro: error")]
    assert len(line) == 1, err[-3000:]
    assert f"Ray's address for '{address}'" in line[0] and "cannot connect" in line[0]
    assert "note: Ray connects to" in err  # the loopback address Ray rewrites is named, not silently replaced
    assert "Traceback" not in err and "reached without checking" not in err


def test_ray_client_address_that_never_answers_honours_sigterm(tmp_path):
    """A server that accepts and never answers: the connecting process still ends on SIGTERM."""
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("ray")
    config, _, _ = _shard_study(tmp_path)
    server = _LoopbackServer()  # accepts, never answers
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(_ray_features(config, f"ray://127.0.0.1:{server.port}"), stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not server.conns and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)  # until it is connected and waiting for an answer
        assert server.conns, "never connected"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("SIGTERM was ignored while connecting to Ray")
        assert proc.returncode == -signal.SIGTERM and time.monotonic() - t0 < 5  # the signal ended it, not a timeout
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
        server.close()


def test_cli_disk_full_while_writing_images_names_the_image(tmp_path, monkeypatch, capsys):
    from cti_repro.cli import main

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write() that fails names no file

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "synth"
    assert main(["data", "synthetic", "--out", str(out), "--products", "6"]) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line and f"{out / 'images'}/" in line and ".png" in line
