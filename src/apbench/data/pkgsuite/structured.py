"""Structured tasks after VTAB's (object count, location, orientation, size, distance), on real
Fashion-MNIST objects (``canvas``): the label is a property of the layout, never of the object's class.

Each kind draws the label first (balanced), then the layout uniformly among those with that label, so
``draw`` gives one metadata dict per image and ``render`` the image (``canvas.compose``).
"""
from __future__ import annotations

import math

from ..base import DataError
from .canvas import ROTATION_SQUARE, compose, overlap, sources_for
from .registry import CANVAS
from .sampling import balanced_labels, split_rng

TRIES = 10_000  # rejection sampling of a layout; far above what any layout here needs


def _draws(task, split, n, src, layout):
    """One dict per image: ``layout(label, rng)`` places the objects ``sources_for`` gave it."""
    rng = split_rng(task.seed, split)
    return [{"label": int(label), "objects": layout(int(label), rng)}
            for label in balanced_labels(n, task.num_classes, rng)]


def render(task, meta, src):
    return compose(src, meta["objects"])


def draw_count(task, split, n, src):
    size = task.params["object"]

    def layout(label, rng):
        for _ in range(TRIES):  # place label + 1 squares one by one; start over when one finds no room
            placed = []
            for obj in sources_for(src, split, label + 1, rng):
                for _ in range(200):
                    obj |= {"top": int(rng.integers(CANVAS - size + 1)), "left": int(rng.integers(CANVAS - size + 1)),
                            "size": size}
                    if not any(overlap(obj, p) for p in placed):
                        placed.append(obj)
                        break
                else:
                    break
            if len(placed) == label + 1:
                return placed
        raise DataError(f"{task.name}: no room for {label + 1} objects of {size} px")
    return _draws(task, split, n, src, layout)


def xpos_label(left: int, size: int, k: int) -> int:
    return left * k // (CANVAS - size + 1)


def draw_xpos(task, split, n, src):
    size, k = task.params["object"], task.num_classes
    lefts = range(CANVAS - size + 1)

    def layout(label, rng):
        mine = [x for x in lefts if xpos_label(x, size, k) == label]
        obj = sources_for(src, split, 1, rng)[0]
        return [obj | {"top": int(rng.integers(CANVAS - size + 1)), "left": int(rng.choice(mine)), "size": size}]
    return _draws(task, split, n, src, layout)


def draw_rotation(task, split, n, src):
    size, jitter, step = task.params["object"], task.params["jitter"], 360 / task.num_classes
    if size != ROTATION_SQUARE:
        raise DataError(f"{task.name}: rotated objects are drawn on {ROTATION_SQUARE} px squares")

    def layout(label, rng):
        obj = sources_for(src, split, 1, rng)[0]
        angle = round(step * label + float(rng.uniform(-jitter, jitter)), 3)
        return [obj | {"top": int(rng.integers(CANVAS - size + 1)), "left": int(rng.integers(CANVAS - size + 1)),
                       "size": size, "angle": angle}]
    return _draws(task, split, n, src, layout)


def draw_size(task, split, n, src):
    lo, step = task.params["smallest"], task.params["step"]

    def layout(label, rng):
        side = lo + step * label + int(rng.integers(step))
        obj = sources_for(src, split, 1, rng)[0]
        return [obj | {"top": int(rng.integers(CANVAS - side + 1)), "left": int(rng.integers(CANVAS - side + 1)),
                       "size": side}]
    return _draws(task, split, n, src, layout)


def centre_distance(a: dict, b: dict) -> float:
    return math.hypot(a["top"] + a["size"] / 2 - b["top"] - b["size"] / 2,
                      a["left"] + a["size"] / 2 - b["left"] - b["size"] / 2)


def draw_pair_distance(task, split, n, src):
    size, near, step = task.params["object"], task.params["nearest"], task.params["step"]
    room = CANVAS - size  # the largest top / left

    def layout(label, rng):
        a, b = sources_for(src, split, 2, rng)
        for _ in range(TRIES):
            d = rng.uniform(near + step * label, near + step * (label + 1))
            theta = rng.uniform(0, 2 * math.pi)
            a |= {"top": int(rng.integers(room + 1)), "left": int(rng.integers(room + 1)), "size": size}
            b |= {"top": int(round(a["top"] + d * math.sin(theta))), "left": int(round(a["left"] + d * math.cos(theta))),
                  "size": size}
            inside = 0 <= b["top"] <= room and 0 <= b["left"] <= room
            if inside and not overlap(a, b) and (centre_distance(a, b) - near) // step == label:
                return [a, b]
        raise DataError(f"{task.name}: no layout at distance class {label}")
    return _draws(task, split, n, src, layout)


KINDS = {"count": (draw_count, render), "xpos": (draw_xpos, render), "rotation": (draw_rotation, render),
         "size": (draw_size, render), "pair_distance": (draw_pair_distance, render)}
