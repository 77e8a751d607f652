"""Natural tasks: class labels of real images as the packages ship them.

Each kind has ``draw(task, split, n, src)`` -> one metadata dict per image (its label and everything the
image is made from; cheap, no pixels) and ``render(task, meta, src)`` -> the image (uint8, H x W grey).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..base import DataError
from .registry import TRAIN, VAL
from .sampling import balanced_labels, split_rng


def pick_balanced(pool: np.ndarray, pool_labels: np.ndarray, n: int, k: int, rng) -> list[int]:
    """``n`` distinct indices of ``pool`` with balanced labels (``balanced_labels``), in the drawn order."""
    want = balanced_labels(n, k, rng)
    picked = np.empty(n, dtype=np.int64)
    for c in range(k):
        slots = np.flatnonzero(want == c)
        candidates = pool[pool_labels == c]
        if len(candidates) < len(slots):
            raise DataError(f"class {c} has {len(candidates)} source images, {len(slots)} needed")
        picked[slots] = rng.choice(candidates, len(slots), replace=False)
    return picked.tolist()


# ------------------------------------------------------------------ pkg_fashion

def draw_fashion(task, split, n, src):
    official, pool = src.pools[split]
    labels = src.fmnist[official][1]
    picked = pick_balanced(pool, labels[pool], n, task.num_classes, split_rng(task.seed, split))
    return [{"label": int(labels[i]), "objects": [src.object_ref(official, i)]} for i in picked]


def render_fashion(task, meta, src):
    ref = meta["objects"][0]
    return src.fmnist_object(ref["split"], ref["index"])


# ------------------------------------------------------------------ pkg_digits

def digit_indices(task, split, src) -> np.ndarray:
    """The declared split of the 1,797 images: train 800 and val 200 balanced, test every other image."""
    from ..sklearn_digits import split_indices
    tr, va, te = split_indices(src.digits[1], TRAIN, VAL, task.seed)
    return {"train": tr, "val": va, "test": te}[split]


def draw_digits(task, split, n, src):
    labels = src.digits[1]
    idx = digit_indices(task, split, src)
    if n > len(idx):
        raise DataError(f"{task.name} {split}: {n} images asked, the split holds {len(idx)}")
    if n < len(idx):  # a smaller copy (tests): a balanced part of the declared split
        idx = np.asarray(pick_balanced(idx, labels[idx], n, task.num_classes, split_rng(task.seed, split)))
    return [{"label": int(labels[i]), "index": int(i)} for i in idx]


def render_digits(task, meta, src):
    return src.digits[0][meta["index"]]


# ------------------------------------------------------------------ pkg_texture

def texture_tiles(task, src) -> dict[str, dict[str, list[tuple[int, int]]]]:
    """{image: {split: [(row, col) tiles]}}: each image's grid of ``tile`` px tiles, dealt once (seeded per
    image) into disjoint test, val and train tiles, so no pixel is in two splits."""
    p, out = task.params, {}
    for i, name in enumerate(p["images"]):
        h, w = src.skimage_gray(name).shape
        grid = [(r, c) for r in range(h // p["tile"]) for c in range(w // p["tile"])]
        order = np.random.default_rng([task.seed, 99, i]).permutation(len(grid))
        n_test, n_val = math.ceil(len(grid) * p["test_tiles"]), math.ceil(len(grid) * p["val_tiles"])
        if len(grid) - n_test - n_val < 1:
            raise DataError(f"skimage.data.{name} is too small for {p['tile']}-px tiles in three splits")
        dealt = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
        out[name] = {s: [grid[j] for j in sorted(d)] for s, d in dealt.items()}
    return out


def draw_texture(task, split, n, src):
    p, rng = task.params, split_rng(task.seed, split)
    tiles = texture_tiles(task, src)
    lo, hi = p["crop"]
    out = []
    for label in balanced_labels(n, task.num_classes, rng):
        name = p["images"][label]
        r, c = tiles[name][split][rng.integers(len(tiles[name][split]))]
        size = int(rng.integers(lo, hi + 1))
        top = r * p["tile"] + int(rng.integers(p["tile"] - size + 1))
        left = c * p["tile"] + int(rng.integers(p["tile"] - size + 1))
        out.append({"label": int(label), "image": name, "tile": [r, c], "box": [top, left, size]})
    return out


def render_texture(task, meta, src):
    top, left, size = meta["box"]
    crop = src.skimage_gray(meta["image"])[top:top + size, left:left + size]
    out = task.params["out"]
    return np.asarray(Image.fromarray(crop).resize((out, out), Image.Resampling.BILINEAR))


KINDS = {"fashion": (draw_fashion, render_fashion), "digits": (draw_digits, render_digits),
         "texture": (draw_texture, render_texture)}
