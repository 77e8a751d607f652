"""Real Fashion-MNIST objects pasted on a black canvas: the structured tasks' one way of drawing.

An object in an image's metadata is ``{"split", "index", "digest", "top", "left", "size"[, "angle"]}``:
the official split and index of its 28 x 28 source, that source's content digest, and where it sits (a
``size`` x ``size`` square; rotated objects first go on a 40 x 40 square so no corner is cut).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .registry import CANVAS

ROTATION_SQUARE = 40  # > 28 * sqrt(2): a rotated 28 x 28 source keeps its corners


def object_pixels(src, obj: dict) -> np.ndarray:
    im = Image.fromarray(src.fmnist_object(obj["split"], obj["index"]))
    if "angle" in obj:
        square = Image.new("L", (ROTATION_SQUARE, ROTATION_SQUARE))
        square.paste(im, ((ROTATION_SQUARE - 28) // 2, (ROTATION_SQUARE - 28) // 2))
        im = square.rotate(obj["angle"], resample=Image.Resampling.BILINEAR)  # counter-clockwise, degrees
    if im.size != (obj["size"], obj["size"]):
        im = im.resize((obj["size"], obj["size"]), Image.Resampling.BILINEAR)
    return np.asarray(im)


def compose(src, objects: list[dict]) -> np.ndarray:
    """The canvas with every object; where two would overlap the brighter pixel wins."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    for obj in objects:
        t, left, s = obj["top"], obj["left"], obj["size"]
        np.maximum(canvas[t:t + s, left:left + s], object_pixels(src, obj), out=canvas[t:t + s, left:left + s])
    return canvas


def overlap(a: dict, b: dict) -> bool:
    """Whether the squares of two placed objects share a pixel."""
    return (a["top"] < b["top"] + b["size"] and b["top"] < a["top"] + a["size"]
            and a["left"] < b["left"] + b["size"] and b["left"] < a["left"] + a["size"])


def sources_for(src, split: str, k: int, rng) -> list[dict]:
    """``k`` distinct objects from ``split``'s pool (train and val: official train; test: official test)."""
    official, pool = src.pools[split]
    return [src.object_ref(official, i) for i in rng.choice(pool, k, replace=False)]
