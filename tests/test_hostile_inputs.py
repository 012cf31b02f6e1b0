"""Hostile input, broken caches and interrupted batches (issue 9): each test fails without its fix.

Network tests use a loopback ``ThreadingHTTPServer`` on 127.0.0.1 that drips, never ends, loops
redirects, sends HTML or redirects to ``file:``; every wait is bounded (seconds).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from cti_repro.data.catalogue import Catalogue, Product
from cti_repro.data.download import DownloadError, download_file

FAST = {"retries": 2, "timeout": 5.0, "backoff": 0.01}


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


class Hostile(BaseHTTPRequestHandler):
    """Routes: /ok.png, /drip (1 byte per 0.3 s), /endless, /huge (announces 1 TB), /html,
    /to-file (302 to file:///etc/passwd), /to-ftp, /loop (redirects to itself), /to-ok."""

    hits: dict[str, int] = {}

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        Hostile.hits[self.path] = Hostile.hits.get(self.path, 0) + 1
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        p = self.path
        if p == "/ok.png":
            self._send(200, png_bytes())
        elif p == "/drip":
            self.send_response(200)
            self.end_headers()  # no length: the body ends when the connection closes
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        elif p == "/endless":
            self.send_response(200)
            self.end_headers()
            block = b"\0" * 65536
            for _ in range(2000):  # 128 MB at most, so a broken cap still ends the test
                self.wfile.write(block)
        elif p == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10 ** 12))
            self.end_headers()
            self.wfile.write(b"\0" * 1000)
        elif p == "/html":
            self._send(200, b"<html><body>Not an image <script>alert(1)</script></body></html>",
                       {"Content-Type": "text/html"})
        elif p == "/to-file":
            self._send(302, headers={"Location": "file:///etc/passwd"})
        elif p == "/to-ftp":
            self._send(302, headers={"Location": "ftp://127.0.0.1/x"})
        elif p == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif p == "/to-ok":
            self._send(302, headers={"Location": "/ok.png"})
        else:
            self._send(404, b"no")


@pytest.fixture(scope="module")
def hostile():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


# ---- item 2 (and 10): http(s) only, caps, deadline, no .part left -----------------------------
@pytest.mark.parametrize("url", ["file:///etc/passwd", "file:///dev/zero", "ftp://127.0.0.1/x", "/etc/passwd",
                                 "data:text/plain,hello"])
def test_download_refuses_non_http_urls(tmp_path, url):
    with pytest.raises(DownloadError, match="only http"):
        download_file(url, tmp_path / "x.jpg", **FAST)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("route", ["/to-file", "/to-ftp"])
def test_redirect_to_other_scheme_is_final_and_not_retried(tmp_path, hostile, route):
    Hostile.hits.pop(route, None)
    with pytest.raises(DownloadError, match="redirect refused"):
        download_file(hostile + route, tmp_path / "x.jpg", retries=3, timeout=5, backoff=0.01)
    assert Hostile.hits[route] == 1  # not retried
    assert list(tmp_path.iterdir()) == []


def test_redirect_to_http_still_works_and_loops_end(tmp_path, hostile):
    assert download_file(hostile + "/to-ok", tmp_path / "a.png", **FAST) == "downloaded"
    assert (tmp_path / "a.png").read_bytes() == png_bytes()
    with pytest.raises(DownloadError):
        download_file(hostile + "/loop", tmp_path / "b.png", retries=0, timeout=5)
    assert not (tmp_path / "b.png.part").exists()


def test_endless_body_stops_at_the_cap_and_removes_the_part(tmp_path, hostile):
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="cap of 1000000 bytes"):
        download_file(hostile + "/endless", tmp_path / "z.jpg", max_bytes=1_000_000, **FAST)
    assert time.monotonic() - t0 < 10
    assert list(tmp_path.iterdir()) == []


def test_announced_size_over_the_cap_is_refused_before_reading(tmp_path, hostile):
    with pytest.raises(DownloadError, match="announces 1000000000000 bytes"):
        download_file(hostile + "/huge", tmp_path / "h.jpg", max_bytes=8 << 20, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_dripping_server_hits_the_overall_deadline(tmp_path, hostile):
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="deadline"):
        download_file(hostile + "/drip", tmp_path / "d.jpg", retries=3, timeout=5, backoff=0.01, deadline=1.5)
    assert time.monotonic() - t0 < 4  # the per-read timeout (5 s) never fires on a drip
    assert list(tmp_path.iterdir()) == []


def test_html_instead_of_an_image_is_rejected_and_removed(tmp_path, hostile):
    from cti_repro.data.xmarket import verify_image

    with pytest.raises(DownloadError, match="verification failed"):
        download_file(hostile + "/html", tmp_path / "p.jpg", verify=verify_image, **FAST)
    assert list(tmp_path.iterdir()) == []


def _write_gz(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def _rec(asin, img: str, **over) -> dict:
    rec = {"asin": asin, "title": f"Thing {asin}", "imgUrl": json.dumps({img: [10, 10]}),
           "features": ["red"], "categories": ["Electronics", "Antennas"]}
    rec.update(over)
    return rec


def test_import_with_hostile_image_urls_copies_nothing_local(tmp_path, hostile):
    from cti_repro.data.xmarket import import_xmarket

    src, out = tmp_path / "src", tmp_path / "out"
    _write_gz(src / "metadata_us_Electronics.json.gz", [json.dumps(_rec(a, u)) for a, u in (
        ("GOOD", hostile + "/ok.png"), ("LOCAL", "file:///etc/passwd"), ("ZERO", "file:///dev/zero"),
        ("BOMB", hostile + "/endless"), ("HTML", hostile + "/html"), ("REDIR", hostile + "/to-file"))])
    s = import_xmarket(str(src), "us", out, workers=4, max_image_bytes=100_000, image_deadline=5, **FAST)
    assert s["kept"] == 1 and s["images"]["failed"] == 5
    assert Catalogue.load(out).product_ids == ["GOOD"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["GOOD.png"]  # no .part, no passwd
    log = (out / "import_log.txt").read_text()
    assert log.count("image_failed") == 5 and "only http(s)" in log and "redirect refused" in log


# ---- item 3: never replace a good catalogue with a smaller one; keep the old logs -------------
def test_failed_reimport_keeps_the_good_catalogue_and_its_log(tmp_path, hostile):
    from cti_repro.cli import main
    from cti_repro.data.xmarket import ImportRefusedError, import_xmarket

    src, out = tmp_path / "src", tmp_path / "out"
    _write_gz(src / "metadata_us_Books.json.gz", [json.dumps(_rec(f"B{i}", hostile + "/ok.png")) for i in range(5)])
    import_xmarket(str(src), "us", out, skip_images=True)
    fp, first_log = Catalogue.load(out).fingerprint(), (out / "import_log.txt").read_text()
    # An unreachable source: no file downloads, zero products.
    with pytest.raises(ImportRefusedError, match="kept 0 product.*has 5.*--force"):
        import_xmarket(hostile + "/nothing-here", "us", out, categories=["Books"], skip_images=True,
                       retries=0, timeout=5)
    assert Catalogue.load(out).fingerprint() == fp
    assert (out / "import_log.txt.1").read_text() == first_log  # the previous log is kept
    # A wrong market through the CLI: exit 2, one line, nothing replaced; --force replaces.
    _write_gz(src / "metadata_de_Books.json.gz", [json.dumps(_rec("D1", hostile + "/ok.png"))])
    assert main(["data", "xmarket", "--source", str(src), "--market", "de", "--out", str(out), "--skip-images"]) == 2
    assert Catalogue.load(out).fingerprint() == fp
    assert main(["data", "xmarket", "--source", str(src), "--market", "de", "--out", str(out), "--skip-images",
                 "--force"]) == 0
    assert Catalogue.load(out).product_ids == ["D1"]
    assert (out / "import_log.txt.3").is_file() and not (out / "import_log.txt.4").exists()


def test_image_failures_on_reimport_do_not_shrink_the_catalogue(tmp_path, hostile):
    from cti_repro.data.xmarket import ImportRefusedError, import_xmarket

    src, out = tmp_path / "src", tmp_path / "out"
    path = src / "metadata_us_Books.json.gz"
    _write_gz(path, [json.dumps(_rec(f"B{i}", hostile + "/ok.png")) for i in range(3)])
    import_xmarket(str(src), "us", out, workers=2, **FAST)
    fp = Catalogue.load(out).fingerprint()
    # same products, but now their images are gone upstream (and locally)
    _write_gz(path, [json.dumps(_rec(f"B{i}", hostile + "/gone.png")) for i in range(3)])
    for f in (out / "images").iterdir():
        f.unlink()
    with pytest.raises(ImportRefusedError, match="images phase"):
        import_xmarket(str(src), "us", out, workers=2, **FAST)
    cat = Catalogue.load(out)
    assert cat.fingerprint() != fp or len(cat) == 3  # the images changed on disk, the catalogue did not
    assert json.loads((out / "catalogue.json").read_text())["complete"] is True and len(cat) == 3


# ---- item 10: small importer things -------------------------------------------------------------
def test_importer_small_things_are_logged(tmp_path, hostile):
    from cti_repro.data.xmarket import import_xmarket

    src, out = tmp_path / "src", tmp_path / "out"
    (src).mkdir()
    (src / "metadata_us_Automotive.json.gz").write_bytes(b"")  # zero bytes
    _write_gz(src / "metadata_us_Books.json.gz", [
        json.dumps(_rec(True, hostile + "/ok.png")),                    # JSON true is no asin
        json.dumps(_rec("P1", hostile + "/ok.png", categories=["Books", 7, None, "Fiction"])),
    ])
    s = import_xmarket(str(src), "us", out, skip_images=True)
    assert s["dropped"]["no_id"] == 1 and s["kept"] == 1 and s["file_errors"] == 1
    assert Catalogue.load(out).product_ids == ["P1"]
    log = (out / "import_log.txt").read_text()
    assert re.search(r"metadata_us_Automotive\.json\.gz:1: file_error: empty file", log)
    assert "metadata_us_Books.json.gz:2: path_element_dropped" in log and s["path_elements_dropped"] == 1


# ---- item 1: catalogue strings never become markup on a page -------------------------------------
EVIL_TITLE = "<img src=x onerror=alert(1)>"
EVIL_CATEGORY = "<script>alert('c')</script> $\\frac{$"
EVIL_ATTRIBUTE = '<a href="javascript:alert(2)" onmouseover="x()">attr</a>'
LIVE_TAG = re.compile(r"<\s*/?\s*(img|script|a|svg|iframe)\b", re.IGNORECASE)


def _evil_catalogue(root: Path) -> Catalogue:
    products = [Product(f"<b>P{i}</b>", EVIL_TITLE, (EVIL_ATTRIBUTE, "$\\frac{$"), (EVIL_CATEGORY, f"$leaf {i % 3}$"))
                for i in range(12)]
    cat = Catalogue.from_products(products, root)
    cat.save(root)
    return Catalogue.load(root)


def test_styled_escapes_every_cell_and_header():
    import pandas as pd

    from cti_repro.report import styled

    df = pd.DataFrame({EVIL_CATEGORY: [EVIL_TITLE], "n": [1.5], "t": [EVIL_ATTRIBUTE]}, index=[EVIL_TITLE])
    out = styled(df, formats={"t": lambda v: v.upper()}, caption=EVIL_CATEGORY).to_html()
    assert not LIVE_TAG.search(out), LIVE_TAG.search(out)
    assert "&lt;img src=x onerror=alert(1)&gt;" in out and "&lt;script&gt;" in out and "&lt;/script&gt;" in out
    shown = styled(df)
    shown.hide_index_ = [False]  # the index, if a caller shows it
    out = shown.to_html()
    assert "&lt;img src=x onerror=alert(1)&gt;</th>" in out and not LIVE_TAG.search(out)


def test_data_page_tables_figures_and_boxes_hold_no_live_tag(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from cti_repro.report import data_page, row_page, styled
    from cti_repro.report.provenance import provenance_html

    cat = _evil_catalogue(tmp_path / "cat")
    fig, table = data_page.sample_products(cat, n=4)
    pages = [styled(table.reset_index(names="product")).to_html(), data_page.statistics_table(cat).to_html(),
             table.to_html()]
    for page in pages:
        assert not LIVE_TAG.search(page), LIVE_TAG.search(page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0] and "&lt;b&gt;P" in pages[0]
    for f in (fig, data_page.roots_figure(cat), data_page.shape_figure(cat)):
        f.savefig(io.BytesIO(), format="png")  # a "$\frac{$" label is text, not broken mathtext
    record = {"status": "ok", "profile": EVIL_TITLE, "setting": "all", "model": "CLIP", "seed": 0,
              "data": {"source": EVIL_CATEGORY, "products": 12, "test_queries": 3},
              "encoders": {"image": {"name": EVIL_ATTRIBUTE, "weights": EVIL_TITLE, "pretrained": False}},
              "git_commit": EVIL_TITLE, "demonstration": True, "finished_at": "2024-01-01T00:00:00"}
    boxes = [provenance_html([record]), row_page.demonstration_box(record),
             styled(row_page.provenance_table(record, "<script>x</script>.json").reset_index()).to_html()]
    for box in boxes:
        assert not LIVE_TAG.search(box), (LIVE_TAG.search(box), box[:300])


# ---- item 7: image-based rows refuse a catalogue without readable images -------------------------
def test_image_rows_refuse_mostly_unreadable_images_and_record_the_count(capsys):
    from types import SimpleNamespace

    from cti_repro.config import load_config
    from cti_repro.run.row import UnreadableImagesError, check_images

    cfg = load_config("smoke")
    fs = SimpleNamespace(stats={"images_unreadable": 60})
    for model in ("CLIP", "CLIP-I", "CLIP-IA", "CLIP-ITA"):
        with pytest.raises(UnreadableImagesError, match="60 of 60 product images are unreadable"):
            check_images(fs, 60, cfg, model)
    assert check_images(fs, 60, cfg, "BM25") == {} and check_images(fs, 60, cfg, "MPNet") == {}
    assert check_images(SimpleNamespace(stats={"images_unreadable": 3}), 60, cfg, "CLIP") == {"images_unreadable": 3}
    assert "3 of 60 product images are unreadable" in capsys.readouterr().err


# ---- item 10: atomic writes honour the umask ------------------------------------------------------
def test_atomic_writes_honour_the_umask(tmp_path):
    import os
    import stat

    from cti_repro.io_utils import atomic_write_text

    old = os.umask(0o022)
    try:
        assert stat.S_IMODE(atomic_write_text(tmp_path / "a.json", "{}").stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(atomic_write_text(tmp_path / "b.json", "{}").stat().st_mode) == 0o600
    finally:
        os.umask(old)


# ---- item 9: CLI errors are one line, exit 2 (bad input) or 130 (Ctrl-C) --------------------------
def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("cti-repro: error: "), err
    return err[0]


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    from cti_repro.cli import main

    qrels = tmp_path / "q.txt"
    qrels.write_text("q1 0 d1 1\n")
    good = gzip.compress(b"q1 Q0 d1 1 1.0 r\n" * 50)
    (tmp_path / "trunc.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "fake.gz").write_bytes(b"\x1f\x8b this is not gzip at all")
    (tmp_path / "latin1.txt").write_bytes(b"q1 Q0 d\xe9 1 1.0 r\n")
    for run in (tmp_path, tmp_path / "trunc.gz", tmp_path / "fake.gz", tmp_path / "latin1.txt"):
        assert main(["eval", "--qrels", str(qrels), "--run", str(run)]) == 2
        assert str(run) in _one_error_line(capsys)
    bad = tmp_path / "cat"
    bad.mkdir()
    (bad / "catalogue.parquet").write_bytes(b"PAR1 broken")
    (bad / "catalogue.json").write_text("{broken")
    assert main(["data", "stats", str(bad)]) == 2
    assert "catalogue" in _one_error_line(capsys)
    (tmp_path / "c.yml").write_bytes(b"\xff\xfe not utf-8")
    assert main(["run", "--setting", "all", "--model", "BM25", "--config", str(tmp_path / "c.yml")]) == 2
    assert "c.yml: not UTF-8" in _one_error_line(capsys)


def test_cli_ctrl_c_is_exit_130_and_bugs_keep_their_traceback(monkeypatch, capsys):
    from cti_repro import cli

    def interrupted(args):
        raise KeyboardInterrupt

    def bug(args):
        raise AttributeError("a genuine bug")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["report"].set_defaults(func=interrupted)
    assert cli.main(["report"]) == 130 and "interrupted" in capsys.readouterr().err
    parser._subparsers._group_actions[0].choices["report"].set_defaults(func=bug)
    with pytest.raises(AttributeError, match="genuine bug"):
        cli.main(["report"])


# ---- item 6: a worker notices its dead parent ---------------------------------------------------
def test_worker_watchdog_exits_when_the_parent_is_gone():
    from cti_repro.run.batch import watch_parent

    parent = [1234]
    exited = threading.Event()
    codes = []
    t = watch_parent(1234, interval=0.05, exit_fn=lambda c: (codes.append(c), exited.set()),
                     getppid=lambda: parent[0])
    time.sleep(0.2)
    assert not exited.is_set()  # parent alive: nothing happens
    parent[0] = 1  # re-parented to init: the batch was killed
    assert exited.wait(2) and codes == [1]
    t.join(1)
    assert not t.is_alive()


# ==== issue 18: the config, --set, overrides folders, verify ======================================
REPO_CFG = Path(__file__).resolve().parent.parent / "_config.yml"


def _bomb(levels: int) -> str:
    """YAML whose aliases expand to 10^levels leaves (428 characters for 7 levels)."""
    lines = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "[" + ", ".join(lines) + "]"


@pytest.mark.parametrize("text,where", [
    ("defaults: {data: {source: x\nprofiles: {}\n", "_config.yml:2:9: not valid YAML"),
    ("- a\n- b\n", "_config.yml: top level must be a mapping"),
    ("defaults: [1]\nprofiles: {p: {}}\n", "_config.yml: defaults: expected a mapping"),
])
def test_item1_broken_config_in_the_folder_spares_help_eval_and_other_configs(tmp_path, monkeypatch, capsys,
                                                                              text, where):
    from cti_repro.cli import main

    (tmp_path / "_config.yml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "usage: cti-repro" in capsys.readouterr().out
    (tmp_path / "q.txt").write_text("q1 0 d1 1\n")
    (tmp_path / "r.txt").write_text("q1 Q0 d1 1 1.0 r\n")
    assert main(["eval", "--qrels", "q.txt", "--run", "r.txt"]) == 0  # needs no config
    capsys.readouterr()
    assert main(["verify", "--profile", "p"]) == 2  # needs it: one line, file, line and column
    assert where in _one_error_line(capsys)


def test_item1_run_with_a_good_config_ignores_a_broken_one_in_the_folder(tmp_path, monkeypatch, capsys):
    from cti_repro.cli import build_parser

    (tmp_path / "_config.yml").write_text("profiles: {oops: [\n")
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["run", "--setting", "all", "--model", "BM25", "--config", str(REPO_CFG)])
    assert args.config == str(REPO_CFG)


def test_item2_alias_bomb_in_set_and_in_the_file_is_refused_fast(tmp_path):
    from cti_repro.config import ConfigError, load_config

    bomb = _bomb(7)
    assert len(bomb) < 500
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"--set extensions.runs.x.seeds:1:\d+: YAML aliases"):
        load_config("smoke", REPO_CFG, overrides=[f"extensions.runs.x.seeds={bomb}"])
    with pytest.raises(ConfigError, match=r"--set seeds:1:\d+: YAML aliases"):
        load_config("smoke", REPO_CFG, overrides=["seeds=[&a 1, *a]"])
    text = REPO_CFG.read_text().replace("runs: {}", f"runs: {{bomb: {{seeds: {bomb}}}}}", 1)
    (tmp_path / "c.yml").write_text(text)
    with pytest.raises(ConfigError, match=r"c.yml:\d+:\d+: expands to more than 100,000 values"):
        load_config("smoke", tmp_path / "c.yml")
    (tmp_path / "loop.yml").write_text("defaults: &d {seeds: *d}\nprofiles: {p: {}}\n")
    with pytest.raises(ConfigError, match="loop.yml"):
        load_config("p", tmp_path / "loop.yml")
    assert time.perf_counter() - t0 < 5
    load_config("smoke", REPO_CFG)  # the repository's anchors and merges still load


@pytest.mark.parametrize("spec,needle", [
    ({"x": {"loss.tau": [[1, 2]]}}, "extensions.runs.x.loss.tau: expected a number"),
    ({"x": {"loss.nope": 1}}, "extensions.runs.x.loss.nope: unknown field loss.nope"),
])
def test_item2_extension_runs_are_typed_at_load(spec, needle):
    from cti_repro.config import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config("smoke", REPO_CFG, overrides={"extensions.runs": spec})
    assert needle in str(err.value)


@pytest.mark.parametrize("bad,needle", [
    ("loss.tau=.inf", "--set loss.tau: expected a finite number"),
    ("loss.tau=.nan", "--set loss.tau: expected a finite number"),
    ("train.lr=.inf", "--set train.lr: expected a finite number"),
    ("train.epochs=1000000000", "--set train.epochs=1000000000: must be <= 10,000"),
    ("xmodal.epochs=1000000000", "--set xmodal.epochs=1000000000: must be <= 10,000"),
    ("model.dim=100000000", "--set model.dim=100000000: must be <= 16,384"),
    ("split.seed=-3", "--set split.seed=-3: seeds must be in [0, 2^32 - 1]"),
    ("seeds=[0, -1]", "seeds must be in [0, 2^32 - 1]"),
    ("eval.tie_seed=4294967296", "--set eval.tie_seed=4294967296: seeds must be in"),
    ("data.synthetic.products=0", "--set data.synthetic.products=0: must be in [1,"),
    ("xmodal.image_size=100000", "--set xmodal.image_size=100000: must be <= 1024 px"),
    ("data.xmarket.workers=1000000", "--set data.xmarket.workers=1000000: must be <= 256"),
])
def test_item11_config_bounds_name_the_field_and_the_reason(bad, needle):
    from cti_repro.config import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config("smoke", REPO_CFG, overrides=[bad])
    assert needle in str(err.value)


def test_item11_yaml11_exponent_strings_are_numbers(tmp_path):
    from cti_repro.config import load_config

    cfg = load_config("smoke", REPO_CFG, overrides=["train.lr=1e-4", "train.weight_decay=5E-3"])
    assert cfg.train.lr == 1e-4 and cfg.train.weight_decay == 5e-3
    text = REPO_CFG.read_text().replace("lr: 1.0e-3", "lr: 2e-3", 1)
    (tmp_path / "c.yml").write_text(text)
    assert load_config("smoke", tmp_path / "c.yml").train.lr == 2e-3


@pytest.mark.parametrize("name", ["{raw}`<img src=x onerror=alert(1)>`", "../../etc", "a b", "", "x" * 65])
def test_item14_extension_names_are_restricted_at_load(name):
    from cti_repro.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="extensions.runs: name .*letters, digits"):
        load_config("smoke", REPO_CFG, overrides={"extensions.runs": {name: {"loss.kind": "tree_soft"}}})


def test_item14_beyond_page_escapes_config_derived_names_and_values():
    from cti_repro.report.beyond import extensions_line

    evil = "{raw}`html <img src=x onerror=alert(1)>`"
    line = extensions_line({evil: {"encoders.clip_prompt": "<script>x</script> {}"}, "ok": {"loss.kind": "tree_soft"}})
    assert "<img" not in line and "<script" not in line and "&lt;img" in line and "&lt;script&gt;" in line
    assert "<b>ok</b> <code>loss.kind=tree_soft</code>" in line
    # the chapter's notebook prints the configured extensions through that helper, not raw Markdown
    nb = json.loads((REPO_CFG.parent / "book" / "templates" / "report_beyond.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    shown = [c for c in cells if "cfg.extensions.runs" in c]
    assert shown and all("extensions_line(" in c and "Markdown(" not in c.split("runs = cfg.extensions.runs")[1]
                         for c in shown)


# ---- item 6: one overrides rule: own folder, default row kept, every executor passes them -----------
@pytest.fixture(scope="module")
def small_smoke(tmp_path_factory, smoke_study, smoke_features):
    """The smoke profile with every output folder in a temporary directory; its catalogue and
    feature cache are copies of the session's (:func:`tests.smoke.seed_from_session`), so the
    rows here only train and rank."""
    from cti_repro.config import load_config
    from tests.smoke import seed_from_session, smoke_config

    base = tmp_path_factory.mktemp("i18_overrides")
    path = smoke_config(base)
    seed_from_session(smoke_study, smoke_features, load_config("smoke", path))
    return base, path


def _cli_json(capsys, argv: list[str]) -> dict:
    from cti_repro.cli import main

    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_item6_run_and_xmodal_run_with_set_keep_the_default_row(small_smoke, capsys):
    from cti_repro.results import read_result

    base, path = small_smoke
    common = ["--profile", "smoke", "--config", str(path)]
    for argv, override in ((["run", "--setting", "most_specific", "--model", "BM25"], "eval.candidates=all"),
                           (["xmodal", "run", "--model", "KCCA"], "xmodal.kcca.n_components=2")):
        default = _cli_json(capsys, [*argv, *common])["result"]
        before = Path(default).read_bytes()
        variant = _cli_json(capsys, [*argv, *common, "--set", override])["result"]
        assert Path(variant).parent.parent.parent.name == "overrides" and Path(variant) != Path(default)
        assert Path(variant).is_relative_to(base / "runs" / "overrides")
        assert Path(default).read_bytes() == before  # the default row is untouched
        assert read_result(variant)["means"] != read_result(default)["means"]  # and the variant differs


def test_item6_reproduce_rows_and_book_go_under_the_overrides_folder(small_smoke):
    from cti_repro.config import load_config, overrides_folder, parse_overrides
    from cti_repro.run import batch, book
    from cti_repro.run.xmodal.batch import plan_xmodal

    base, path = small_smoke
    sets = ["loss.tau=0.5", "xmodal.epochs=1"]
    cfg = load_config("smoke", path, overrides=sets)
    folder = base / "runs" / overrides_folder(parse_overrides(sets))
    assert Path(cfg.path(cfg.results_dir)) == folder and Path(cfg.path(cfg.book_dir)) == folder / "book"
    layout = book.book_layout(cfg)
    tasks = batch.plan_rows(cfg, "fp", layout) + plan_xmodal(cfg, "fp", layout, None, False, batch.RowTask)
    assert tasks and all(t.result.is_relative_to(folder) and t.notebook.is_relative_to(folder) for t in tasks)
    # an explicit results_dir override is the user's folder
    mine = load_config("smoke", path, overrides=[f"results_dir={base / 'mine'}", "loss.tau=0.5"])
    assert Path(mine.results_dir) == base / "mine" and Path(mine.book_dir) == base / "mine" / "book"


def test_item6_every_row_job_receives_the_overrides(small_smoke, monkeypatch):
    from cti_repro.config import load_config
    from cti_repro.run import batch, book
    from cti_repro.run.xmodal import batch as xmodal_batch

    base, path = small_smoke
    sets = ["loss.tau=0.5", "xmodal.epochs=1"]
    cfg = load_config("smoke", path, overrides=sets)
    layout = book.book_layout(cfg)
    seen: list[dict] = []
    fake = lambda template, out, params, meta, cwd, **kw: seen.append(params)  # noqa: E731
    monkeypatch.setattr(batch, "execute", fake)
    monkeypatch.setattr(xmodal_batch, "execute", fake)
    cti = batch.plan_rows(cfg, "fp", layout)[:2]
    xm = xmodal_batch.plan_xmodal(cfg, "fp", layout, None, False, batch.RowTask)[:2]
    assert batch.run_rows(cti, cfg, "fp", layout, path, overrides=sets) == []
    # as reproduce calls it: the xmodal rows through the batch's run_rows (local processes or Ray)
    assert xmodal_batch.run_xmodal_rows(xm, cfg, "fp", layout, path, False, batch.run_rows, overrides=sets) == []
    assert len(seen) == 4 and all(p["overrides"] == sets for p in seen)
    assert all(Path(p["results_dir"]) == Path(cfg.path(cfg.results_dir)).resolve() for p in seen)


@pytest.mark.slow
def test_item6_xmodal_row_notebook_applies_the_overrides(small_smoke):
    from cti_repro.config import load_config
    from cti_repro.results import read_result
    from cti_repro.run import book
    from cti_repro.run.notebooks import execute, stamp
    from cti_repro.run.xmodal.row import xmodal_result_path

    base, path = small_smoke
    sets = ["xmodal.kcca.n_components=3"]
    cfg = load_config("smoke", path, overrides=sets)
    layout = book.book_layout(cfg)
    template = layout.templates / "xmodal_row.ipynb"
    results = Path(cfg.path(cfg.results_dir))
    params = {"model": "KCCA", "profile": "smoke", "seed": 0, "results_dir": str(results),
              "config_path": str(path), "force": False, "overrides": sets}
    execute(template, layout.xmodal_row_notebook("KCCA", 0), params, stamp(cfg, "fp", template), base)
    rec = read_result(xmodal_result_path(results, "KCCA", 0))
    assert rec["config"]["xmodal"]["kcca"]["n_components"] == 3 and rec["config_hash"] == cfg.xmodal_hash()


# ---- item 7: verify checks the profile's whole plan; a tampered expected file is one line ----------
def _plan_results(root: Path, skip: int = 0, failed: int = 0) -> Path:
    """Smoke-plan results (18 rows of seed 0): the first ``skip`` rows absent, the next ``failed`` failed."""
    from cti_repro.results import result_path, write_result
    from cti_repro.study import MODELS, SETTINGS
    from tests.report.test_tables import make_record

    for i, (setting, model, seed) in enumerate((s, m, 0) for m in MODELS for s in SETTINGS):
        if i >= skip:
            status = "failed" if i < skip + failed else "ok"
            write_result(result_path(root, setting, model, seed), make_record(setting, model, seed, status=status))
    return root


def test_item7_verify_write_refuses_an_incomplete_plan(tmp_path, capsys):
    from cti_repro.cli import main

    partial = _plan_results(tmp_path / "partial", skip=6, failed=1)
    exp = tmp_path / "e.json"
    assert main(["verify", "--profile", "smoke", "--results", str(partial), "--expected", str(exp), "--write"]) == 2
    line = _one_error_line(capsys)
    assert "only 66 of the profile's 108 planned cells" in line and "all BM25 seed 0" in line and not exp.exists()


def test_item7_verify_fails_a_trimmed_expected_file(tmp_path, capsys):
    from cti_repro.cli import main

    full = _plan_results(tmp_path / "full")
    exp = tmp_path / "e.json"
    base = ["verify", "--profile", "smoke", "--results", str(full), "--expected", str(exp)]
    assert main([*base, "--write"]) == 0
    data = json.loads(exp.read_text())
    data["cells"] = dict(list(data["cells"].items())[:3])
    exp.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(base) == 1
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("FAIL: 3 of 108 cells") and "105 NOT EXPECTED" in out


@pytest.mark.parametrize("cells,needle", [
    ({"all/BM25/0/P@1": "30"}, "cells['all/BM25/0/P@1']: expected a finite number, got '30'"),
    ({"all/BM25/0/P@1": None}, "cells['all/BM25/0/P@1']: expected a finite number, got 'None'"),
    (["all/BM25/0/P@1"], "needs a 'cells' mapping"),
    ({"all/BM25/0/P@1/x": 1.0}, "cells['all/BM25/0/P@1/x']: key must be setting/model/seed/metric"),
    ({"all/BM25/zero/P@1": 1.0}, "cells['all/BM25/zero/P@1']: key must be"),
])
def test_item7_tampered_expected_file_is_one_line_naming_file_and_key(tmp_path, capsys, cells, needle):
    from cti_repro.cli import main

    full = _plan_results(tmp_path / "full")
    exp = tmp_path / "e.json"
    exp.write_text(json.dumps({"cells": cells}))
    assert main(["verify", "--profile", "smoke", "--results", str(full), "--expected", str(exp)]) == 2
    line = _one_error_line(capsys)
    assert str(exp) in line and needle in line


# ---- item 12: data.synthetic overrides on an existing catalogue folder ----------------------------
def test_item12_synthetic_overrides_regenerate_or_refuse(tmp_path, capsys):
    from cti_repro.config import load_config
    from cti_repro.data.catalogue import Catalogue, CatalogueError
    from cti_repro.data.prepare import prepare_catalogue

    def cfg(products: int, seed: int = 0):
        return load_config("smoke", REPO_CFG, overrides={"data.dir": str(tmp_path / "cat"), "cache_dir": str(tmp_path / "c"),
                                                         "data.synthetic.products": products, "data.synthetic.seed": seed})

    first = prepare_catalogue(cfg(30))
    assert len(first) == 30
    bigger = prepare_catalogue(cfg(40))  # the folder exists: the old 30 products must not be used
    assert len(bigger) == 40 and bigger.meta["products"] == 40 and "regenerating" in capsys.readouterr().err
    assert len(list((tmp_path / "cat" / "images").glob("*.png"))) == 40
    reseeded = prepare_catalogue(cfg(40, seed=1))
    assert reseeded.meta["seed"] == 1 and reseeded.fingerprint() != bigger.fingerprint()
    assert prepare_catalogue(cfg(40, seed=1)).fingerprint() == reseeded.fingerprint()  # current: kept
    # a catalogue this package did not generate (no recorded parameters) is refused with the command
    cat = Catalogue.load(tmp_path / "cat")
    cat.meta = {"source": "synthetic"}
    cat.save(tmp_path / "cat")
    with pytest.raises(CatalogueError, match=r"40 products .* data.synthetic.products is 50; generate the asked one "
                                             r"with `cti-repro data synthetic --out .*cat --products 50 --seed 1`"):
        prepare_catalogue(cfg(50, seed=1))
    assert len(prepare_catalogue(cfg(40, seed=1))) == 40  # its own size: used as it is


def test_item6_trained_variant_keeps_the_default_checkpoint(small_smoke, capsys):
    from cti_repro.results import read_result

    base, path = small_smoke
    argv = ["run", "--setting", "most_specific", "--model", "CLIP-I", "--profile", "smoke", "--config", str(path),
            "--set", "train.epochs=1"]
    default = _cli_json(capsys, argv[:-2])["result"]
    ckpt = base / "cache" / "checkpoints" / "most_specific" / "CLIP-I_seed0.pt"
    before = ckpt.read_bytes()
    variant = _cli_json(capsys, argv)["result"]
    assert ckpt.read_bytes() == before and list((base / "cache" / "checkpoints" / "beyond").rglob("CLIP-I_seed0.pt"))
    assert len(read_result(variant)["training"]["history"]) == 1 != len(read_result(default)["training"]["history"])


@pytest.mark.parametrize("argv", [["run", "--setting", "all", "--model", "BM25", "--seed", "-3"],
                                  ["xmodal", "run", "--model", "KCCA", "--seed", "-3"],
                                  ["finegrained", "run", "--model", "MLF", "--seed", "-3"],
                                  ["reproduce", "--seeds", "0", "-3"],
                                  ["data", "synthetic", "--products", "1", "--seed", "4294967296"]])
def test_item11_command_line_seeds_are_bounded_naming_the_option(argv, capsys, tmp_path):
    from cti_repro.cli import main

    # a missing config / a tmp folder: without the bound the command stops there, it never runs a study
    argv = [*argv, "--out", str(tmp_path / "x")] if argv[0] == "data" else [*argv, "--config", str(tmp_path / "no.yml")]
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and "seeds must be in [0, 2^32 - 1]" in err and "argument --seed" in err
