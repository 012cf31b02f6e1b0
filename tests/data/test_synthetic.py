"""The synthetic catalogue: determinism, realistic statistics, imperfect titles, image signal, CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cti_repro.config import load_config
from cti_repro.data.catalogue import Catalogue
from cti_repro.data.synthetic import DEFAULT_PRODUCTS, category_tree, generate_synthetic
from cti_repro.data.synthetic_vocab import singular


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def cat600(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    return generate_synthetic(tmp_path_factory.mktemp("syn600"), products=600, seed=0)


def test_default_size_is_the_embedded_profile() -> None:
    # `cti-repro data synthetic` without --products builds the embedded profile's catalogue
    assert DEFAULT_PRODUCTS == load_config("embedded").data.synthetic.products


def test_byte_identical_for_same_seed_and_different_for_another(tmp_path: Path) -> None:
    a = generate_synthetic(tmp_path / "a", products=150, seed=3)
    generate_synthetic(tmp_path / "b", products=150, seed=3)
    c = generate_synthetic(tmp_path / "c", products=150, seed=4)
    da, db, dc = _digests(tmp_path / "a"), _digests(tmp_path / "b"), _digests(tmp_path / "c")
    assert len(da) == 150 + 2  # images + parquet + json
    assert da == db
    assert da["catalogue.parquet"] != dc["catalogue.parquet"]
    assert a.titles != c.titles and c.titles == Catalogue.load(tmp_path / "c").titles
    assert a.meta["source"] == "synthetic" and a.meta["seed"] == 3 and a.meta["products"] == 150


def test_regenerating_smaller_removes_stale_images(tmp_path: Path) -> None:
    generate_synthetic(tmp_path, products=20, seed=0)
    generate_synthetic(tmp_path, products=10, seed=0)
    assert len(list((tmp_path / "images").glob("*.png"))) == 10


def test_tree_shape() -> None:
    nodes = category_tree()
    leaves = [n.path for n in nodes if n.is_leaf]
    assert 8 <= sum(len(n.path) == 1 for n in nodes) <= 12
    assert len(leaves) >= 200
    assert min(map(len, leaves)) >= 2 and max(map(len, leaves)) >= 6
    names = [n.path[-1] for n in nodes]  # homonyms are merged by name, internal nodes included
    for homonym in ("Accessories", "Parts", "Sets"):
        assert names.count(homonym) >= 3, homonym


def test_stats_sanity(cat600: Catalogue) -> None:
    s = cat600.stats()
    assert s["products"] == 600 and s["images_missing"] == 0
    assert s["root_categories"] >= 8
    assert s["depth_min"] >= 2 and s["depth_max"] >= 5
    assert 3.0 <= s["depth_mean"] <= 5.0
    assert s["attributes_min"] >= 1 and s["attributes_max"] <= 12 and 4.5 <= s["attributes_mean"] <= 7.0
    assert all(t.strip() for t in cat600.titles)
    assert set(cat600.frame["source"]) == {"synthetic"} and set(cat600.frame["image_url"]) == {""}
    # Some products stop at an internal node, so a path can end above the deepest level.
    leaf_paths = {n.path for n in category_tree() if n.is_leaf}
    internal = sum(tuple(p) not in leaf_paths for p in cat600.paths)
    assert 0.05 * 600 < internal < 0.3 * 600
    for i in range(len(cat600)):
        with Image.open(cat600.image_path(i)) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size[0] == im.size[1]


def test_titles_name_their_category_only_sometimes(cat600: Catalogue) -> None:
    hits = [
        p[-1].lower() in t.lower() or singular(p[-1]).lower() in t.lower()
        for p, t in zip(cat600.paths, cat600.titles)
    ]
    assert 0.2 < float(np.mean(hits)) < 0.9


def _pixels(cat: Catalogue) -> np.ndarray:
    rows = []
    for i in range(len(cat)):
        with Image.open(cat.image_path(i)) as im:
            small = im.convert("RGB").resize((16, 16), Image.BILINEAR)
        rows.append(np.asarray(small, dtype=np.float32).ravel() / 255.0)
    return np.stack(rows)


def test_images_carry_category_signal(cat600: Catalogue) -> None:
    x = _pixels(cat600)
    roots = np.array([p[0] for p in cat600.paths], dtype=object)
    leaves = np.array([p[-1] for p in cat600.paths], dtype=object)
    perm = np.random.default_rng(0).permutation(len(cat600))
    tr, te = perm[:450], perm[450:]
    # Nearest centroid on the root.
    classes = sorted(set(roots[tr]))
    centroids = np.stack([x[tr][roots[tr] == c].mean(0) for c in classes])
    pred = np.asarray(classes, dtype=object)[((x[te][:, None] - centroids[None]) ** 2).sum(-1).argmin(1)]
    acc = float((pred == roots[te]).mean())
    assert acc > 2.0 / len(classes), acc
    assert acc < 0.95  # informative, not trivial
    # 1-nearest-neighbour on the leaf: far above chance (1 / number of leaf labels).
    nn = ((x[te][:, None] - x[tr][None]) ** 2).sum(-1).argmin(1)
    leaf_acc = float((leaves[tr][nn] == leaves[te]).mean())
    assert leaf_acc > 5.0 / len(set(leaves)), leaf_acc


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cti_repro.cli import main

    assert main(["data", "synthetic", "--out", str(tmp_path), "--products", "50", "--seed", "1"]) == 0
    assert main(["data", "stats", str(tmp_path)]) == 0
    assert '"products": 50' in capsys.readouterr().out
    assert len(Catalogue.load(tmp_path)) == 50
