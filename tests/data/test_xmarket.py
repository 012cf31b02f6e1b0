"""XMarket import: real record shapes, every bad line, URL download with resume, images, CLI.

All network traffic goes to a loopback ``ThreadingHTTPServer`` on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from cti_repro.data.catalogue import Catalogue
from cti_repro.data.download import DownloadError, download_file
from cti_repro.data.xmarket import (
    XMARKET_CATEGORIES,
    image_filename,
    import_xmarket,
    parse_line,
    pick_image_url,
)

FAST = {"retries": 2, "timeout": 5.0, "backoff": 0.01}


# ---- fixtures: records in the official sample shape, gzip writers, a loopback server ---------
def record(asin: str, img_base: str = "https://images-na.ssl-images-amazon.com/images/I", **over) -> dict:
    """A metadata record shaped like XMarket's official sample (asin B000023VW2)."""
    rec = {
        "asin": asin,
        "title": f"  Antenna {asin}  ",
        "averageRating": "4.3",
        "ratingCount": "698 global ratings",
        "price": "$12.86",
        "imgUrl": json.dumps({
            f"{img_base}/71-X{asin}._AC_SX569_.jpg": [369, 569],
            f"{img_base}/71-X{asin}._AC_SX679_.jpg": [441, 679],
            f"{img_base}/71-X{asin}._AC_SX425_.jpg": [276, 425],
        }),
        "related": {"sponsored": [], "alsoBought": ["B00X"], "alsoViewed": [], "boughtTogether": [],
                    "compared": []},
        "productDetails": {"Item Weight": "3.2 ounces", "Manufacturer": "Acme", "ASIN": asin,
                           "sellerPage": {"x": 1}, "Rank": 5},
        "categories": ["Electronics", " Accessories & Supplies ", "Audio & Video Accessories",
                       "Antennas", ""],
        "description": "An antenna.",
        "overviewFeatures": {},
        "features": [" Strong signal ", "", "Easy mount"],
        "reviewFilters": {},
    }
    rec.update(over)
    return rec


def write_gz(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


class Server:
    """Serves ``files`` (path -> bytes) with Range support; counts requests per path.

    ``truncate_once`` paths answer their first request with the full Content-Length but only
    half the body (a dropped connection), to exercise the short-file retry.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: Counter = Counter()
        self.ranges: list[tuple[str, str]] = []
        self.truncate_once: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server.requests[self.path] += 1
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                start = 0
                if rng:
                    server.ranges.append((self.path, rng))
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate_once:
                    server.truncate_once.discard(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    s = Server()
    yield s
    s.close()


def read_log(out: Path) -> str:
    return (out / "import_log.txt").read_text()


# ---- unit pieces ------------------------------------------------------------------------------
def test_parse_line_formats_and_rejections(tmp_path):
    assert parse_line('{"asin": "A"}') == [{"asin": "A"}]
    assert parse_line("{'asin': 'A', 'ok': True, 'x': None}") == [{"asin": "A", "ok": True, "x": None}]
    assert parse_line("[{'asin': 'A'}, {'asin': 'B'}]") == [{"asin": "A"}, {"asin": "B"}]
    marker = tmp_path / "pwned"
    for bad in ('{"asin": "A", "title": "tru', "42", "[1, 2]", "[]", "'text'", "[" * 50000 + "]" * 50000,
                f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"):
        with pytest.raises(ValueError):
            parse_line(bad)
    assert not marker.exists()


def test_pick_image_url_largest_ties_and_malformed():
    s = json.dumps({"https://x/a_SX569_.jpg": [369, 569], "https://x/b_SX679_.jpg": [441, 679]})
    assert pick_image_url(s) == "https://x/b_SX679_.jpg"
    assert pick_image_url({"https://x/a.jpg": [10, 20], "https://x/b.jpg": [20, 10]}) == "https://x/a.jpg"
    assert pick_image_url({"https://x/a.jpg": "?", "https://x/b.jpg": [1, 1]}) == "https://x/b.jpg"
    for bad in ("{not json", None, 5, "", "[]", {}):
        assert pick_image_url(bad) == ""


def test_image_filename_is_safe_and_unique():
    assert image_filename("B000023VW2", "https://x/I/71-X._AC_SX569_.jpg?x=1") == "B000023VW2.jpg"
    assert image_filename("B1", "https://x/pic.PNG") == "B1.png"
    assert image_filename("B1", "https://x/pic") == "B1.jpg"
    a, b = image_filename("../a/b", "https://x/p.jpg"), image_filename("._a_b", "https://x/p.jpg")
    assert "/" not in a and not a.startswith(".") and a != b


# ---- directory source: every bad line, drop reasons, duplicates, truncated gzip -------------
def build_source(src: Path, marker: Path) -> None:
    """Two category files covering every line format and drop reason, plus a truncated gzip."""
    good_py = record("PY1")
    lines = [
        json.dumps(record("J1")),                                        # 1 JSON line
        repr(good_py),                                                    # 2 Python literal
        json.dumps([record("L1"), record("L2")]),                         # 3 list of dicts
        "",                                                               # 4 blank
        '{"asin": "BAD", "title": "trunc',                                # 5 truncated JSON
        f"__import__('os').system('touch {marker}')",                     # 6 hostile
        "12345",                                                          # 7 a number
        "[1, 'a']",                                                       # 8 list of non-dicts
        json.dumps(record("T0", title="   ")),                            # 9 no_title
        json.dumps(record("I0", imgUrl="{broken")),                       # 10 no_image_url
        json.dumps(record("A0", features=[], productDetails={"Rank": 5})),  # 11 no_attributes
        json.dumps(record("S0", categories=["Electronics", "  "])),      # 12 shallow_path
        json.dumps(record("PD", features=[])),                            # 13 productDetails fallback
        json.dumps(record("D1", title="from Electronics")),               # 14 duplicate of Automotive's
    ]
    write_gz(src / "us" / "Electronics" / "metadata_us_Electronics.json.gz", lines)
    write_gz(src / "us" / "Automotive" / "metadata_us_Automotive.json.gz",
             [json.dumps(record("D1", title="from Automotive")), json.dumps(record("AU1"))])
    # Truncated gzip: two lines flushed, then a cut in the middle of the compressed tail.
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write((json.dumps(record("TR1")) + "\n" + json.dumps(record("TR2")) + "\n").encode())
        gz.flush(zlib.Z_FULL_FLUSH)
        gz.write(("\n".join(json.dumps(record(f"TX{i}")) for i in range(50)) + "\n").encode())
    data = buf.getvalue()
    (src / "metadata_us_Toys_and_Games.json.gz").write_bytes(data[: len(data) - 200])
    # Another market's file is ignored.
    write_gz(src / "metadata_de_Electronics.json.gz", [json.dumps(record("DE1"))])


def test_directory_import_counts_every_case(tmp_path):
    src, out, marker = tmp_path / "src", tmp_path / "out", tmp_path / "pwned"
    build_source(src, marker)
    s = import_xmarket(str(src), "us", out, skip_images=True)
    assert not marker.exists(), "hostile line was executed"

    cat = Catalogue.load(out)
    ids = cat.product_ids
    assert {"J1", "PY1", "L1", "L2", "PD", "D1", "AU1", "TR1", "TR2"} <= set(ids)
    assert not {"T0", "I0", "A0", "S0", "DE1"} & set(ids)
    assert len(ids) == len(set(ids)) == s["kept"]
    assert s["files"] == 3 and s["file_errors"] == 1
    assert s["blank"] == 1 and s["malformed"] == 4 and s["duplicates"] == 1
    assert s["dropped"] == {"no_id": 0, "no_title": 1, "no_image_url": 1, "no_attributes": 1,
                            "shallow_path": 1, "image_failed": 0}
    assert s["records"] == s["kept"] + sum(s["dropped"].values()) + s["duplicates"]
    assert s["images"] == {"downloaded": 0, "present": 0, "failed": 0}

    by_id = {p.product_id: p for p in cat}
    j1 = by_id["J1"]
    assert j1.title == "Antenna J1"
    assert j1.attributes == ("Strong signal", "Easy mount")
    assert j1.category_path == ("Electronics", "Accessories & Supplies", "Audio & Video Accessories", "Antennas")
    assert j1.image_url.endswith("71-XJ1._AC_SX679_.jpg") and j1.image == ""
    assert j1.source == "xmarket:us"
    # Files are read in sorted path order (.../us/Automotive before .../us/Electronics): first wins.
    assert by_id["D1"].title == "from Automotive"
    assert by_id["PD"].attributes == ("Item Weight: 3.2 ounces", "Manufacturer: Acme", "ASIN: PD")

    log = read_log(out)
    elec = "metadata_us_Electronics.json.gz"
    for ln, kind in ((4, "blank"), (5, "malformed"), (6, "malformed"), (7, "malformed"), (8, "malformed")):
        assert f"{elec}:{ln}: {kind}" in log
    assert "metadata_us_Toys_and_Games.json.gz:" in log and "file_error" in log
    assert f"{elec}:14: duplicate" in log

    meta = json.loads((out / "catalogue.json").read_text())
    assert meta["source"] == str(src) and meta["market"] == "us" and meta["complete"] is True
    assert meta["summary"]["kept"] == s["kept"]


def test_directory_category_filter_and_errors(tmp_path):
    src = tmp_path / "src"
    build_source(src, tmp_path / "m")
    s = import_xmarket(str(src), "us", tmp_path / "o", categories=["Automotive"], skip_images=True)
    assert s["files"] == 1 and s["kept"] == 2 and s["categories"] == ["Automotive"]
    with pytest.raises(FileNotFoundError):
        import_xmarket(str(src), "us", tmp_path / "o2", categories=["Books"], skip_images=True)
    with pytest.raises(FileNotFoundError):
        import_xmarket(str(tmp_path / "nope"), "us", tmp_path / "o3")


# ---- URL source: resume, short reads, no re-download -----------------------------------------
def test_url_download_resume_and_no_refetch(tmp_path, server):
    out = tmp_path / "out"
    elec = gzip.compress(("\n".join(json.dumps(record(f"E{i}")) for i in range(30)) + "\n").encode())
    auto = gzip.compress((json.dumps(record("AU1")) + "\n").encode())
    p_elec = "/us/Electronics/metadata_us_Electronics.json.gz"
    p_auto = "/us/Automotive/metadata_us_Automotive.json.gz"
    server.files[p_elec] = elec
    server.files[p_auto] = auto
    server.truncate_once.add(p_auto)  # first answer is short: must be retried, not accepted
    # A partial download left by an interrupted run: must be resumed with a Range request.
    raw = out / "raw"
    raw.mkdir(parents=True)
    (raw / "metadata_us_Electronics.json.gz.part").write_bytes(elec[:100])

    cats = ["Electronics", "Automotive", "Books"]  # Books is a 404: logged, not fatal
    s = import_xmarket(server.base, "us", out, categories=cats, skip_images=True, **FAST)
    assert s["kept"] == 31 and s["files"] == 2 and s["files_failed"] == 1 and s["files_downloaded"] == 2
    assert (raw / "metadata_us_Electronics.json.gz").read_bytes() == elec
    assert (raw / "metadata_us_Automotive.json.gz").read_bytes() == auto
    assert not list(raw.glob("*.part"))
    assert (p_elec, "bytes=100-") in server.ranges
    assert server.requests[p_elec] == 1 and server.requests[p_auto] == 2
    assert "download_failed" in read_log(out) and "Books" in read_log(out)

    before = Counter(server.requests)
    s2 = import_xmarket(server.base, "us", out, categories=cats, skip_images=True, **FAST)
    assert s2["kept"] == 31 and s2["files_present"] == 2 and s2["files_downloaded"] == 0
    assert server.requests[p_elec] == before[p_elec] and server.requests[p_auto] == before[p_auto]


def test_download_file_rejects_short_file(tmp_path, server):
    server.files["/f.bin"] = b"x" * 1000
    server.truncate_once.add("/f.bin")
    # With no retries the short answer is an error, and nothing is renamed into place.
    with pytest.raises(DownloadError):
        download_file(f"{server.base}/f.bin", tmp_path / "f.bin", retries=0, timeout=5)
    assert not (tmp_path / "f.bin").exists() and (tmp_path / "f.bin.part").stat().st_size == 500
    assert download_file(f"{server.base}/f.bin", tmp_path / "f.bin", retries=0, timeout=5) == "downloaded"
    assert (tmp_path / "f.bin").read_bytes() == b"x" * 1000
    assert download_file(f"{server.base}/f.bin", tmp_path / "f.bin") == "present"
    assert server.requests["/f.bin"] == 2


# ---- images: valid, corrupt, 404, rerun ------------------------------------------------------
def test_image_download_verify_and_rerun(tmp_path, server):
    src, out = tmp_path / "src", tmp_path / "out"
    server.files["/img/good.png"] = png_bytes()
    server.files["/img/big.png"] = png_bytes()
    server.files["/img/corrupt.jpg"] = b"\xff\xd8\xff\xe0 definitely not a jpeg"
    img = lambda name, hw: json.dumps({f"{server.base}/img/{name}": hw})  # noqa: E731
    write_gz(src / "metadata_us_Electronics.json.gz", [
        json.dumps(record("GOOD", imgUrl=img("good.png", [10, 10]))),
        json.dumps(record("BAD", imgUrl=img("corrupt.jpg", [10, 10]))),
        json.dumps(record("GONE", imgUrl=img("missing.jpg", [10, 10]))),
        json.dumps(record("BIG", imgUrl=json.dumps({f"{server.base}/img/small.png": [5, 5],
                                                    f"{server.base}/img/big.png": [50, 50]}))),
    ])
    s = import_xmarket(str(src), "us", out, workers=4, **FAST)
    assert s["images"] == {"downloaded": 2, "present": 0, "failed": 2}
    assert s["dropped"]["image_failed"] == 2 and s["kept"] == 2
    cat = Catalogue.load(out)
    assert cat.product_ids == ["GOOD", "BIG"]
    assert [p.image for p in cat] == ["images/GOOD.png", "images/BIG.png"]
    assert cat.stats()["images_missing"] == 0
    assert server.requests["/img/small.png"] == 0  # only the largest image is fetched
    assert server.requests["/img/missing.jpg"] == 1  # a 404 is final, not retried
    log = read_log(out)
    assert "BAD: image_failed" in log and "GONE: image_failed" in log and "404" in log
    assert not list((out / "images").glob("*.part"))

    # A broken leftover is re-fetched; good images already present are not.
    (out / "images" / "BIG.png").write_bytes(b"garbage")
    before = Counter(server.requests)
    s2 = import_xmarket(str(src), "us", out, workers=4, **FAST)
    assert s2["images"] == {"downloaded": 1, "present": 1, "failed": 2}
    assert server.requests["/img/good.png"] == before["/img/good.png"]
    assert server.requests["/img/big.png"] == before["/img/big.png"] + 1
    # Third run: nothing new is fetched except the failures, which are tried again.
    before = Counter(server.requests)
    s3 = import_xmarket(str(src), "us", out, workers=4, **FAST)
    assert s3["images"] == {"downloaded": 0, "present": 2, "failed": 2}
    new = server.requests - before
    assert set(new) <= {"/img/corrupt.jpg", "/img/missing.jpg"}
    assert Catalogue.load(out).fingerprint() == cat.fingerprint()


def test_interrupted_image_download_resumes(tmp_path, server, monkeypatch):
    import cti_repro.data.xmarket as xm

    src, out = tmp_path / "src", tmp_path / "out"
    for name in ("a", "b", "c"):
        server.files[f"/img/{name}.png"] = png_bytes()
    write_gz(src / "metadata_us_Books.json.gz", [
        json.dumps(record(n.upper(), imgUrl=json.dumps({f"{server.base}/img/{n}.png": [8, 6]})))
        for n in ("a", "b", "c")
    ])
    real = xm.download_file

    def flaky(url, dest, **kw):
        if url.endswith("/b.png"):
            raise KeyboardInterrupt  # Ctrl-C in the middle of the image phase
        return real(url, dest, **kw)

    monkeypatch.setattr(xm, "download_file", flaky)
    with pytest.raises(KeyboardInterrupt):
        import_xmarket(str(src), "us", out, workers=1, **FAST)
    # Something usable was written: the metadata catalogue (marked incomplete) and the log.
    assert json.loads((out / "catalogue.json").read_text())["complete"] is False
    assert len(Catalogue.load(out)) == 3 and (out / "import_log.txt").is_file()
    assert (out / "images" / "A.png").is_file()

    monkeypatch.setattr(xm, "download_file", real)
    before = Counter(server.requests)
    s = import_xmarket(str(src), "us", out, workers=1, **FAST)
    # B is fetched now; A (and C, if the worker finished it before the shutdown) is skipped.
    assert s["images"]["failed"] == 0 and s["kept"] == 3
    assert s["images"]["present"] >= 1 and s["images"]["downloaded"] + s["images"]["present"] == 3
    assert server.requests["/img/a.png"] == before["/img/a.png"]
    assert server.requests["/img/b.png"] == before["/img/b.png"] + 1
    assert json.loads((out / "catalogue.json").read_text())["complete"] is True


# ---- CLI -------------------------------------------------------------------------------------
def test_cli_xmarket(tmp_path, capsys):
    from cti_repro.cli import main

    src, out = tmp_path / "src", tmp_path / "out"
    build_source(src, tmp_path / "m")
    assert main(["data", "xmarket", "--source", str(src), "--market", "us", "--out", str(out),
                 "--skip-images"]) == 0
    cat = Catalogue.load(out)
    assert len(cat) == json.loads(capsys.readouterr().out)["kept"] > 0
    assert main(["data", "xmarket", "--source", str(tmp_path / "nope"), "--out", str(out)]) == 2


def test_categories_constant():
    assert len(XMARKET_CATEGORIES) == 16 == len(set(XMARKET_CATEGORIES))
    assert XMARKET_CATEGORIES[0] == "Arts_Crafts_and_Sewing" and "Toys_and_Games" in XMARKET_CATEGORIES
