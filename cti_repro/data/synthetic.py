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

import io
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from cti_repro.data import synthetic_vocab as V
from cti_repro.data.catalogue import IMAGES_DIR, Catalogue, Product

GENERATOR_VERSION = "1"
DEFAULT_PRODUCTS = 3000
IMAGE_SIZE = 96
INTERNAL_FRACTION = 0.15  # products attached above the deepest level of their branch
ZIPF_EXPONENT = 0.7
# Grain on 3x3 blocks: looks like sensor/JPEG noise yet keeps PNGs small (~7 KB) and fast to encode.
_NOISE_SIGMA = 4.0
_NOISE_BLOCK = 3
_PNG_LEVEL = 1
_L = 64  # side of the local canvas the object is drawn on before scaling / rotation

SHAPES = ("rect", "rounded", "ellipse", "triangle", "diamond", "hexagon", "star", "cross", "bottle",
          "ring", "trapezoid", "arch", "capsule", "lshape", "house", "octagon")
ASPECTS = (1.0, 0.6, 1.6)
PATTERNS = ("plain", "hstripes", "vstripes", "diag", "dots", "checker", "grid", "rings", "antidiag",
            "half", "border", "wave")
DETAILS = ("none", "handle", "knob", "base", "button", "band", "antenna", "corner")
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


# ---- images ------------------------------------------------------------------------------------
_YY, _XX = np.mgrid[0:_L, 0:_L].astype(np.float32)
_POLYGONS: dict[str, list[tuple[float, float]]] = {  # vertices in the unit box of the silhouette
    "triangle": [(0.5, 0), (1, 1), (0, 1)],
    "diamond": [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)],
    "cross": [(0.33, 0), (0.67, 0), (0.67, 0.33), (1, 0.33), (1, 0.67), (0.67, 0.67), (0.67, 1), (0.33, 1),
              (0.33, 0.67), (0, 0.67), (0, 0.33), (0.33, 0.33)],
    "bottle": [(0.38, 0), (0.62, 0), (0.62, 0.25), (0.9, 0.38), (0.9, 1), (0.1, 1), (0.1, 0.38), (0.38, 0.25)],
    "trapezoid": [(0.25, 0), (0.75, 0), (1, 1), (0, 1)],
    "lshape": [(0, 0), (0.45, 0), (0.45, 0.55), (1, 0.55), (1, 1), (0, 1)],
    "house": [(0.5, 0), (1, 0.4), (1, 1), (0, 1), (0, 0.4)],
}


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, aspect: float) -> tuple[float, float, float, float]:
    w = 0.9 * _L * min(1.0, aspect)
    h = 0.9 * _L * min(1.0, 1.0 / aspect)
    x0, y0 = (_L - w) / 2, (_L - h) / 2
    x1, y1, cx, cy = x0 + w, y0 + h, _L / 2, _L / 2

    def poly(pts: list[tuple[float, float]]) -> None:
        draw.polygon([(x0 + px * w, y0 + py * h) for px, py in pts], fill=255)

    if shape in _POLYGONS:
        poly(_POLYGONS[shape])
    elif shape == "rect":
        draw.rectangle((x0, y0, x1, y1), fill=255)
    elif shape in ("rounded", "capsule"):
        draw.rounded_rectangle((x0, y0, x1, y1), radius=min(w, h) * (0.22 if shape == "rounded" else 0.4), fill=255)
    elif shape in ("ellipse", "ring"):
        draw.ellipse((x0, y0, x1, y1), fill=255)
        if shape == "ring":
            draw.ellipse((cx - w * 0.22, cy - h * 0.22, cx + w * 0.22, cy + h * 0.22), fill=0)
    elif shape in ("hexagon", "octagon", "star"):
        k = 10 if shape == "star" else 6 if shape == "hexagon" else 8
        a = np.arange(k) * 2 * np.pi / k + (np.pi / k if shape != "star" else -np.pi / 2)
        r = np.where((np.arange(k) % 2 == 0) | (shape != "star"), 0.5, 0.22)
        poly([(0.5 + ri * np.cos(t), 0.5 + ri * np.sin(t)) for ri, t in zip(r, a)])
    else:  # arch: a dome on a box
        draw.pieslice((x0, y0, x1, y0 + h), 180, 360, fill=255)
        draw.rectangle((x0, cy, x1, y1), fill=255)
    return x0, y0, x1, y1


_BORDER = np.minimum(np.minimum(_XX, _L - 1 - _XX), np.minimum(_YY, _L - 1 - _YY))
_RADIUS = np.hypot(_XX - _L / 2, _YY - _L / 2)
# Fill patterns as functions of shifted coordinates (x, y) and period p; "plain" is all False.
_PATTERN_FNS: dict[str, Any] = {
    "hstripes": lambda x, y, p: (y % p) < p / 2,
    "vstripes": lambda x, y, p: (x % p) < p / 2,
    "diag": lambda x, y, p: ((x + y) % p) < p / 2,
    "antidiag": lambda x, y, p: ((x - y) % p) < p / 2,
    "dots": lambda x, y, p: ((x % p) - p / 2) ** 2 + ((y % p) - p / 2) ** 2 < (p / 4) ** 2,
    "checker": lambda x, y, p: ((x // p) + (y // p)) % 2 == 0,
    "grid": lambda x, y, p: ((x % p) < 2) | ((y % p) < 2),
    "rings": lambda x, y, p: (_RADIUS % p) < p / 2,
    "half": lambda x, y, p: _YY > _L / 2,
    "border": lambda x, y, p: (_BORDER > 8) & (_BORDER < 8 + p / 2),
    "wave": lambda x, y, p: ((y + 3 * np.sin(x / 4)) % p) < p / 2,
}


def _pattern(kind: str, period: float, phase: float) -> np.ndarray:
    fn = _PATTERN_FNS.get(kind)
    return fn(_XX + phase, _YY + phase, period) if fn else np.zeros((_L, _L), dtype=bool)


@dataclass(frozen=True)
class Look:
    """Visual traits of a category: root tint, branch silhouette, level-3 detail, node pattern."""

    tint: tuple[int, int, int]
    shape: str
    aspect: float
    detail: str
    pattern: str
    period: float


def _looks(nodes: list[Node]) -> dict[tuple[str, ...], Look]:
    """The visual traits of every node: tint by root, shape by level-2 branch, detail, pattern."""
    by_path = {n.path: n for n in nodes}
    roots = [n.path[0] for n in nodes if len(n.path) == 1]
    branches = [n.path for n in nodes if len(n.path) == 2]
    looks: dict[tuple[str, ...], Look] = {}
    for n in nodes:
        if len(n.path) < 2:
            continue
        r = roots.index(n.path[0])
        hue = r / len(roots)
        tint = tuple(int(round(238 + 14 * np.cos(2 * np.pi * (hue - k / 3)))) for k in range(3))
        g = branches.index(n.path[:2])
        d3 = by_path[n.path[:3]].sibling if len(n.path) >= 3 else 0
        s = n.sibling
        looks[n.path] = Look(tint, SHAPES[g % len(SHAPES)], ASPECTS[(g // len(SHAPES) + r) % len(ASPECTS)],
                              DETAILS[d3 % len(DETAILS)], PATTERNS[s % len(PATTERNS)],
                              6.0 + 3.0 * ((s // len(PATTERNS) + len(n.path)) % 3))
    return looks


def render_image(look: Look, rgb: tuple[int, int, int], scale: float, rng: np.random.Generator) -> bytes:
    """A product photo: the object in ``rgb`` with the look's traits, jittered and noised.

    Args:
        look: visual traits of the product's category.
        rgb: fill colour (from the ``Colour`` attribute).
        scale: object size relative to the image (from the size property).
        rng: the product's generator (position, rotation, noise, distractor).

    Returns:
        PNG bytes of an ``IMAGE_SIZE`` square RGB image.
    """
    mask_img = Image.new("L", (_L, _L), 0)
    draw = ImageDraw.Draw(mask_img)
    x0, y0, x1, y1 = _draw_shape(draw, look.shape, look.aspect)
    fill = np.array(rgb, dtype=np.float32)
    alt = fill * 0.5 if fill.mean() > 90 else fill * 0.4 + 150  # pattern visible on dark fills too
    pat = _pattern(look.pattern, look.period, float(rng.integers(0, 8)))
    img = np.where(pat[..., None], alt, fill) * (1.1 - 0.2 * _XX / _L)[..., None]  # side lighting
    det = Image.new("L", (_L, _L), 0)
    dd = ImageDraw.Draw(det)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    {  # detail marks drawn in dark grey, partly outside the silhouette (handle, antenna, base)
        "handle": lambda: dd.ellipse((x1 - 4, cy - 9, x1 + 6, cy + 9), outline=255, width=3),
        "knob": lambda: dd.ellipse((cx - 5, y0 - 4, cx + 5, y0 + 6), fill=255),
        "base": lambda: dd.rectangle((x0 + 4, y1 - 5, x1 - 4, y1), fill=255),
        "button": lambda: dd.ellipse((cx - 5, cy - 5, cx + 5, cy + 5), fill=255),
        "band": lambda: dd.rectangle((x0, cy - 3, x1, cy + 3), fill=255),
        "antenna": lambda: dd.line((cx + 6, y0 + 6, cx + 14, 0), fill=255, width=3),
        "corner": lambda: dd.rectangle((x0 + 2, y0 + 2, x0 + 12, y0 + 12), fill=255),
    }.get(look.detail, lambda: None)()
    dmask = np.asarray(det) > 0
    img[dmask] = (50.0, 50.0, 55.0)
    alpha = np.where((np.asarray(mask_img) > 0) | dmask, 255, 0).astype(np.uint8)
    obj = Image.fromarray(np.dstack([np.clip(img, 0, 255).astype(np.uint8), alpha]), "RGBA")
    side = int(round(IMAGE_SIZE * scale))
    obj = obj.resize((side, side), Image.BILINEAR)
    angle = float(rng.normal(0, 8)) if rng.random() > 0.1 else float(rng.uniform(-90, 90))
    obj = obj.rotate(angle, resample=Image.BILINEAR, expand=True)
    tint = look.tint if rng.random() > 0.25 else (250, 250, 250)  # some shots on plain white
    bg = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tint)
    bd = ImageDraw.Draw(bg)
    if rng.random() < 0.5:  # floor shadow
        sh = tuple(int(c * 0.88) for c in tint)
        bd.ellipse((IMAGE_SIZE * 0.2, IMAGE_SIZE * 0.78, IMAGE_SIZE * 0.8, IMAGE_SIZE * 0.92), fill=sh)
    jx, jy = rng.integers(-8, 9, size=2)
    bg.paste(obj, ((IMAGE_SIZE - obj.width) // 2 + int(jx), (IMAGE_SIZE - obj.height) // 2 + int(jy)), obj)
    if rng.random() < 0.15:  # a distractor: packaging, cable, a second small item
        c = tuple(int(v) for v in rng.integers(0, 256, size=3))
        px, py = (int(v) for v in rng.integers(0, IMAGE_SIZE - 20, size=2))
        [bd.rectangle, bd.ellipse][int(rng.integers(0, 2))]((px, py, px + 18, py + 14), fill=c)
    b = _NOISE_BLOCK
    noise = rng.normal(0, _NOISE_SIGMA, size=(IMAGE_SIZE // b, IMAGE_SIZE // b, 3)).repeat(b, 0).repeat(b, 1)
    arr = np.clip(np.asarray(bg, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG", compress_level=_PNG_LEVEL)
    return buf.getvalue()


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
    looks = _looks(nodes)
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
        (img_dir / names[i]).write_bytes(png)
        items.append(Product(f"SYN-{i:06d}", title, tuple(attrs), path, f"{IMAGES_DIR}/{names[i]}", "",
                             "synthetic"))
    keep = set(names)
    for stale in sorted(img_dir.glob("SYN-*.png")):
        if stale.name not in keep:
            stale.unlink()
    meta = {"source": "synthetic", "generator": "cti_repro.data.synthetic",
            "generator_version": GENERATOR_VERSION, "products": n, "seed": seed, "image_size": IMAGE_SIZE}
    cat = Catalogue.from_products(items, root=out, meta=meta)
    cat.save(out)
    return cat
