"""The synthetic catalogue's product photos: how a category looks, and one rendered image.

A category's :class:`Look` (root tint, level-2 silhouette, level-3 detail, node pattern) is drawn
by :func:`render_image` in the product's colour and size, jittered and noised, as a PNG.
Deterministic for a given ``numpy`` generator, so the catalogue stays byte-identical per seed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 96
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


def looks_of(nodes: list[Any]) -> dict[tuple[str, ...], Look]:
    """The visual traits of every node (``path``, ``sibling``: a synthetic ``Node``): tint by root, shape
    by level-2 branch, detail, pattern."""
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
