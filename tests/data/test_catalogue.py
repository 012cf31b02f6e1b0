import pytest

from cti_repro.cli import main
from cti_repro.data.catalogue import Catalogue, CatalogueError, Product


def _cat(root=None):
    return Catalogue.from_products(
        [
            Product("p1", "Red mug", ("Colour: red", "Material: ceramic"), ("Home", "Kitchen", "Mugs"), "images/p1.png"),
            Product("p2", "Blue mug", ("Colour: blue",), ("Home", "Kitchen", "Mugs")),
            Product("p3", "Drill", ("Power: 500 W", "Colour: red", "Cordless"), ("Tools", "Drills")),
        ],
        root=root,
    )


def test_stats_hand_computed(tmp_path):
    cat = _cat()
    cat.save(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "p1.png").write_bytes(b"x")
    s = Catalogue.load(tmp_path).stats()
    assert s["products"] == 3
    assert s["unique_categories"] == 5          # Home, Kitchen, Mugs, Tools, Drills
    assert s["root_categories"] == 2 and s["leaf_categories"] == 2
    assert s["category_product_pairs"] == 3 + 3 + 2
    assert s["depth_min"] == 2 and s["depth_max"] == 3 and s["levels"] == 3
    assert s["depth_mean"] == pytest.approx(8 / 3, abs=1e-4)
    assert s["attributes_total"] == 6 and s["attributes_unique"] == 5
    assert (s["attributes_min"], s["attributes_max"]) == (1, 3)
    assert s["images_missing"] == 2


def test_roundtrip_and_fingerprint(tmp_path):
    cat = _cat()
    cat.save(tmp_path)
    back = Catalogue.load(tmp_path)
    assert list(back) == list(cat)
    assert back.fingerprint() == cat.fingerprint()
    changed = back.frame.copy()
    changed.loc[0, "title"] = "Green mug"
    assert Catalogue(changed, tmp_path).fingerprint() != cat.fingerprint()


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda f: f.drop(columns=["title"]), "missing column(s) ['title']"),
        (lambda f: f.assign(title=[1, 2, 3]), "column 'title' must hold str, row 0"),
        (lambda f: f.assign(category_path=["Home", "a", "b"]), "column 'category_path' must hold list<str>, row 0"),
        (lambda f: f.assign(product_id=["a", "a", "b"]), "'product_id' has duplicates"),
    ],
)
def test_validation_names_the_field(tmp_path, mutate, needle):
    frame = mutate(_cat().frame.copy())
    frame.to_parquet(tmp_path / "catalogue.parquet")
    with pytest.raises(CatalogueError) as err:
        Catalogue.load(tmp_path)
    assert needle in str(err.value) and "catalogue.parquet" in str(err.value)


def test_missing_catalogue_and_cli_error(tmp_path, capsys):
    with pytest.raises(CatalogueError, match="no catalogue here"):
        Catalogue.load(tmp_path)
    assert main(["data", "stats", str(tmp_path)]) == 2
    assert "no catalogue here" in capsys.readouterr().err


def test_cli_stats_prints_json(tmp_path, capsys):
    import json

    _cat().save(tmp_path)
    assert main(["data", "stats", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["products"] == 3 and out["category_product_pairs"] == 8


def test_fingerprint_is_computed_once_per_catalogue(tmp_path, monkeypatch) -> None:
    cat = Catalogue.from_products([Product(f"p{i}", f"t{i}", ("a",), ("R", "L")) for i in range(5)])
    cat.save(tmp_path)
    first = cat.fingerprint()
    calls = []
    real = cat.frame.itertuples
    monkeypatch.setattr(cat.frame, "itertuples", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert cat.fingerprint() == first and calls == []  # cached: the table is not walked again
    cat.save(tmp_path)  # a save may have changed image files: computed again, same value
    assert calls and cat.fingerprint() == first
    assert Catalogue.load(tmp_path).fingerprint() == first


def test_stats_of_an_interrupted_import_say_incomplete_and_count_images_on_disk(tmp_path, capsys):
    import json

    # what import_xmarket leaves when stopped during the image phase: image column empty,
    # complete false, some images finished and one .part being downloaded
    cat = Catalogue.from_products([Product(f"p{i}", f"t{i}", ("a",), ("R", "L"), "", f"http://x/{i}.jpg")
                                   for i in range(4)], meta={"source": "x", "complete": False})
    cat.save(tmp_path)
    (tmp_path / "images").mkdir()
    for name in ("p0.jpg", "p1.jpg", "p2.jpg.part"):
        (tmp_path / "images" / name).write_bytes(b"x")
    (tmp_path / "images" / "sub").mkdir()  # not a file: not counted
    s = Catalogue.load(tmp_path).stats()
    assert (s["complete"], s["images_on_disk"], s["images_partial"], s["images_missing"]) == (False, 2, 1, 4)
    assert main(["data", "stats", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images_on_disk"] == 2
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and "INCOMPLETE" in warning[0] and "2 image(s) on disk" in warning[0]
    # a complete catalogue gets no such keys and no warning
    Catalogue.from_products(list(cat), meta={"complete": True}).save(tmp_path)
    assert "complete" not in Catalogue.load(tmp_path).stats()
    assert main(["data", "stats", str(tmp_path)]) == 0 and capsys.readouterr().err == ""
