"""The figures of an executed notebook at the size the book shows them, as palette PNGs.

Matplotlib's inline backend writes 8-bit RGBA PNGs at the figure's full size: a gallery of
product thumbnails weighs ~900 KB that way, and a figure wider than the article column is
scaled down by the browser (its text with it). :func:`compact_notebook_images` rewrites every
``image/png`` output of an executed notebook: at most :data:`DISPLAY_WIDTH` pixels wide (the
width sphinx-book-theme gives a figure at a 1400 px window) and quantised to a 128-colour
palette on white, typically 3-5x lighter and looking the same at that size. Figures are drawn
to fit that width in the first place (``cti_repro.report``); the resize is the safety net.
"""

from __future__ import annotations

import base64
import io
from typing import Any

DISPLAY_WIDTH = 784  # px: the figure width of the book's article column at a 1400 px window
PALETTE_COLOURS = 128  # line plots need a few dozen; thumbnails stay recognisable


def compact_png(data: bytes, max_width: int = DISPLAY_WIDTH) -> bytes:
    """``data`` (a PNG) at most ``max_width`` wide, flattened on white and quantised to a palette;
    the original when that is not smaller (a tiny or already-palette image)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as src:
        im = src.convert("RGBA")
    if im.width > max_width:
        im = im.resize((max_width, max(1, round(im.height * max_width / im.width))), Image.Resampling.LANCZOS)
    flat = Image.new("RGB", im.size, "white")
    flat.paste(im, mask=im.getchannel("A"))
    out = io.BytesIO()
    flat.quantize(PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        out, "PNG", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data


def compact_notebook_images(nb: Any, max_width: int = DISPLAY_WIDTH) -> int:
    """Rewrite every ``image/png`` output of ``nb`` (an nbformat notebook) with :func:`compact_png`,
    in place; returns the bytes saved. The outputs' ``width``/``height`` metadata is dropped (the
    image's own size is the size to show)."""
    saved = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            png = (output.get("data") or {}).get("image/png")
            if not png:
                continue
            raw = base64.b64decode(png if isinstance(png, str) else "".join(png))
            small = compact_png(raw, max_width)
            if small is not raw:
                output["data"]["image/png"] = base64.b64encode(small).decode("ascii")
                (output.get("metadata") or {}).pop("image/png", None)
                saved += len(raw) - len(small)
    return saved


__all__ = ["DISPLAY_WIDTH", "compact_png", "compact_notebook_images"]
