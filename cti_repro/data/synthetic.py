"""A deterministic synthetic e-commerce catalogue (the embedded stand-in for XMarket).

Products hang under a realistic browse tree (:mod:`cti_repro.data.synthetic_vocab`): ten roots,
paths of depth 2 to 6, homonymous names merged by name as in XMarket. Leaves are drawn with a
Zipf-like skew and ~15 % of products stop at an internal node, so depth varies per product.

Each modality carries partial, different evidence about the category:

* title: ~half name the leaf (or its singular), some a synonym or only the parent, the rest are
  generic ("Brand XK-200 Pro, Black, 2-Pack"); extra tokens and typos add noise;
* attributes: root-specific keys and selling points, shared generic bullets, sometimes a bullet
  naming the leaf/parent, sometimes one from another root;
* image: background tint per root (not always), silhouette per level-2 branch, detail mark per
  level-3 node, fill pattern per end node; fill colour from the ``Colour`` attribute (with a
  leaf-dependent preference), scale from the size; jitter, rotation, distractors, pixel noise.

Everything is drawn from ``random.Random`` / ``numpy.random.default_rng`` seeded by ``(seed, i)``,
so every output file is byte-identical for the same arguments.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cti_repro.data import synthetic_vocab as V
from cti_repro.data.catalogue import IMAGES_DIR, Catalogue, Product
from cti_repro.data.synthetic_images import IMAGE_SIZE, looks_of, render_image
from cti_repro.io_utils import naming_path

GENERATOR_VERSION = "1"
GENERATOR = "cti_repro.data.synthetic"  # catalogue.json's "generator": parameters recorded beside it
DEFAULT_PRODUCTS = 3000
INTERNAL_FRACTION = 0.15  # products attached above the deepest level of their branch
ZIPF_EXPONENT = 0.7
# Names too generic to stand for a product type in a title or bullet ("Great addition to any parts").
_VAGUE = {"Accessories", "Parts", "Sets", "Men", "Women", "Kids", "Girls", "Boys", "Baby", "Men's",
          "Women's", "Clothing", "Athletic", "Face", "Body", "Eyes", "Lips", "Storage"}


@dataclass(frozen=True)
class Node:
    """One category node of the synthetic tree.

    Attributes:
        path: names from the root to this node.
        synonyms: title synonyms of the node's name.
        sibling: index among its siblings (drives the node's visual trait).
        is_leaf: whether the node has no children.
    """

    path: tuple[str, ...]
    synonyms: tuple[str, ...]
    sibling: int
    is_leaf: bool


def category_tree() -> list[Node]:
    """All nodes of :data:`synthetic_vocab.TREE` in pre-order (a fixed, declaration order).

    Returns:
        The list of :class:`Node` (roots included).
    """
    out: list[Node] = []

    def walk(spec: Any, prefix: tuple[str, ...]) -> None:
        items: list[tuple[str, Any]] = []
        for x in (spec.items() if isinstance(spec, dict) else spec):
            if isinstance(x, str):
                items.append((x, None))
            elif isinstance(x, dict):
                items.extend(x.items())
            else:
                items.append(x)
        for k, (key, sub) in enumerate(items):
            name, *syn = key.split("|")
            out.append(Node(prefix + (name,), tuple(syn), k, sub is None))
            if sub is not None:
                walk(sub, prefix + (name,))

    walk(V.TREE, ())
    return out


def _fill_digits(template: str, rng: random.Random) -> str:
    # Each "#" becomes a digit; the first digit of a number is never 0 ("08 servings").
    out: list[str] = []
    for c in template:
        lead = not out or not out[-1].isdigit()
        out.append(str(rng.randint(1 if lead else 0, 9)) if c == "#" else c)
    return "".join(out)


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    cands = [j for j, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not cands:
        return text
    j = rng.choice(cands)
    w = words[j]
    p = rng.randint(1, len(w) - 2)
    words[j] = w[:p] + w[p + 1] + w[p] + w[p + 2:] if rng.random() < 0.6 else w[:p] + w[p + 1:]
    return " ".join(words)


def _title(path: tuple[str, ...], syn: tuple[str, ...], colour: str, rng: random.Random) -> str:
    """A title that names the end node ~half of the time, else a synonym, the parent or nothing."""
    style = V.ROOT_STYLE[path[0]]
    brand = rng.choice(style["brands"] + V.SHARED_BRANDS)
    model = rng.choice(["", "", "Pro ", "Max ", "Plus "]) + (
        f"{rng.choice('ABCDEFGHKLMNPRSTVXZ')}{rng.choice('ABCDEFGHKLMNPRSTVXZ')}-{rng.randint(10, 9999)}")
    adj = rng.choice(style["adjectives"] + V.GENERIC_ADJECTIVES)
    feat = rng.choice(style["features"])
    u = rng.random()
    if u < 0.10 and syn:
        kw = rng.choice(syn)
        kw = " ".join(w[:1].upper() + w[1:] for w in kw.split()) if rng.random() < 0.7 else kw
    elif u < 0.60:
        kw = path[-1] if rng.random() < 0.35 else V.singular(path[-1])
    elif u < 0.77:
        up = [p for p in path[1:-1] if p not in _VAGUE]
        kw = V.singular(up[-1]) if up else rng.choice(style["nouns"])
    else:
        kw = ""
    if kw:
        t = rng.choice([
            f"{brand} {adj} {kw} {model}", f"{brand} {kw}, {colour}, {rng.choice(V.PACKS)}",
            f"{brand} {model} {kw} {feat}", f"{adj} {kw} by {brand} - {feat}", f"{brand} {kw} {feat}, {colour}",
        ])
    else:
        t = rng.choice([f"{brand} {model}, {colour}, {rng.choice(V.PACKS)}", f"{brand} {model} - {adj}, {feat}",
                        f"{brand} {adj} {model} {feat}"])
    if rng.random() < 0.25:
        t = f"{t} {rng.choice(V.EXTRA_TOKENS)}"
    if rng.random() < 0.07:
        t = _typo(t, rng)
    return " ".join(t.split())


def _attributes(path: tuple[str, ...], colour: str, size: float, rng: random.Random) -> list[str]:
    """1-12 bullets (mean ~5.7): colour/size facts, root-specific keys, selling points, noise."""
    root = path[0]
    style = V.ROOT_STYLE[root]
    k = min(12, max(1, round(rng.gauss(5.7, 2.4))))
    out: list[str] = []
    if rng.random() < 0.7:
        out.append(f"{rng.choice(['Colour', 'Color', 'Colour'])}: {colour if rng.random() < 0.8 else colour.lower()}")
    keys = list(style["attributes"])
    if rng.random() < 0.45:
        sizes = style["attributes"].get("Size", ["Small", "Medium", "Large", "Extra Large"])
        out.append(f"Size: {sizes[min(len(sizes) - 1, int(size * len(sizes)))]}")
    if "Size" in keys:
        keys.remove("Size")  # the size is a hidden product property, never a random value
    if rng.random() < 0.4:
        up = [p for p in path[:-1] if p not in _VAGUE]
        out.append(rng.choice(V.EVIDENCE_BULLETS).format(
            leaf=V.singular(path[-1]).lower(), parent=up[-1].lower(), root=root))
    if rng.random() < 0.1:  # a bullet that points at the wrong root
        other = V.ROOT_STYLE[rng.choice(sorted(V.ROOT_STYLE))]
        out.append(rng.choice(other["bullets"]))
    rng.shuffle(keys)
    while len(out) < k:
        u = rng.random()
        if u < 0.55 and keys:
            key = keys.pop()
            out.append(f"{key}: {_fill_digits(rng.choice(style['attributes'][key]), rng)}")
        elif u < 0.8:
            out.append(rng.choice(style["bullets"]))
        else:
            out.append(rng.choice(V.GENERIC_BULLETS))
    out = list(dict.fromkeys(out))[:k]  # drop repeats, keep first occurrences in order
    rng.shuffle(out)
    return out



# ---- the catalogue -----------------------------------------------------------------------------
def generate_synthetic(out: Path, products: int | None = None, seed: int = 0) -> Catalogue:
    """Generate, write and return the synthetic catalogue.

    Args:
        out: target directory; receives ``catalogue.parquet``, ``catalogue.json`` and ``images/``
            (stale ``SYN-*.png`` from an earlier, larger run are removed).
        products: number of products (None: :data:`DEFAULT_PRODUCTS`).
        seed: random seed; the same arguments give byte-identical files.

    Returns:
        The saved :class:`Catalogue` (root ``out``).
    """
    n = DEFAULT_PRODUCTS if products is None else int(products)
    if n < 1 or seed < 0:
        raise ValueError(f"need products >= 1 and seed >= 0, got products={n}, seed={seed}")
    out = Path(out)
    img_dir = out / IMAGES_DIR
    img_dir.mkdir(parents=True, exist_ok=True)
    nodes = category_tree()
    looks = looks_of(nodes)
    syn = {nd.path: nd.synonyms for nd in nodes}
    leaves = [nd.path for nd in nodes if nd.is_leaf]

    rng = np.random.default_rng(seed)
    # Zipf-like popularity over leaves in a seed-dependent order (a few big, many tiny categories).
    w = 1.0 / np.arange(1, len(leaves) + 1) ** ZIPF_EXPONENT
    # Deeper leaves are favoured (most shop products sit in fine-grained leaves): mean depth ~3.9.
    w = w[rng.permutation(len(leaves))] * np.array([len(p) - 1 for p in leaves], dtype=float)
    picks = rng.choice(len(leaves), size=n, p=w / w.sum())
    cut = rng.random(n) < INTERNAL_FRACTION
    cut_u = rng.random(n)
    colour_names = list(V.COLOURS)

    items: list[Product] = []
    names = [f"SYN-{i:06d}.png" for i in range(n)]
    for i in tqdm(range(n), desc="synthetic catalogue", unit="product", mininterval=0.5):
        path = leaves[int(picks[i])]
        if cut[i] and len(path) > 2:  # stop at an internal node (depth 2 .. len-1)
            path = path[: 2 + int(cut_u[i] * (len(path) - 2))]
        trng = random.Random((seed << 32) | i)  # per product: independent of generation order
        irng = np.random.default_rng([seed, i])
        u = trng.random()
        if u < 0.35:  # a leaf-typical colour (e.g. most espresso machines are silver)
            # crc32, not hash(): str hashing is salted per process (PYTHONHASHSEED).
            colour = colour_names[zlib.crc32("/".join(path).encode()) % len(colour_names)]
        elif u < 0.85:
            colour = trng.choice(V.ROOT_STYLE[path[0]]["palette"])
        else:
            colour = trng.choice(colour_names)
        size = trng.random()
        title = _title(path, syn[path], colour, trng)
        attrs = _attributes(path, colour, size, trng)
        png = render_image(looks[path], V.COLOURS[colour], 0.55 + 0.3 * size, irng)
        with naming_path(img_dir / names[i]):  # a full disk names the file, not just ENOSPC
            (img_dir / names[i]).write_bytes(png)
        items.append(Product(f"SYN-{i:06d}", title, tuple(attrs), path, f"{IMAGES_DIR}/{names[i]}", "",
                             "synthetic"))
    keep = set(names)
    for stale in sorted(img_dir.glob("SYN-*.png")):
        if stale.name not in keep:
            stale.unlink()
    meta = {"source": "synthetic", "generator": GENERATOR,
            "generator_version": GENERATOR_VERSION, "products": n, "seed": seed, "image_size": IMAGE_SIZE}
    cat = Catalogue.from_products(items, root=out, meta=meta)
    cat.save(out)
    return cat
