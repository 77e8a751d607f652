"""Full-size sets with CoOp's fixed splits: ``split_zhou_<Name>.json`` next to the image folder.

The JSON is ``{"train": [[path, label, classname], ...], "val": [...], "test": [...]}`` with paths
relative to the set's image folder (``food-101/images``, ``oxford_flowers/jpg``, ``eurosat/2750``,
``ucf101/UCF-101-midframes`` ...), given per config in ``image_dir``.
"""
from __future__ import annotations

import json

from .base import DataError, Splits, register_loader
from .images import OUTSIDE, ImageFiles, find_folder, outside, require_file

SPLITS = ("train", "val", "test")


@register_loader("coop_split")
def load_coop_split(root, transforms, folder, split_file: str, image_dir: str = "",
                    num_classes: int | None = None, trainval: bool = False):
    """``trainval=True`` trains on CoOp's train + val; ``val`` is always CoOp's val."""
    fix = "follow CoOp's DATASETS.md for this set (images plus the split_zhou_*.json file)"
    base = find_folder(root, folder, ("",), "dataset", fix)
    path = require_file(base / split_file, fix)
    try:
        split = json.loads(path.read_text())
        items = {s: [(str(p), int(y), str(c)) for p, y, c in split[s]] for s in SPLITS}
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a CoOp split file with train/val/test lists of [path, label, classname] "
                        f"({type(e).__name__}: {e}); {fix}") from None
    for s in SPLITS:
        if not items[s]:
            raise DataError(f"empty split: {path} has no {s!r} images; {fix}")
        if (bad := next((i for i, (p, _, _) in enumerate(items[s]) if outside(p)), None)) is not None:
            raise DataError(f"{path}: {s}[{bad}] {items[s][bad][0]!r} is outside the image folder; {OUTSIDE}")
    names: dict[int, str] = {}
    for s in SPLITS:
        for _, y, c in items[s]:
            if names.setdefault(y, c) != c:
                raise DataError(f"{path}: label {y} is named both {names[y]!r} and {c!r}")
    k = len(names)
    if sorted(names) != list(range(k)):
        raise DataError(f"{path}: labels are not 0..{k - 1} (found {sorted(names)[:3]}...{sorted(names)[-3:]})")
    if num_classes is not None and k != num_classes:
        raise DataError(f"{path} has {k} classes, the dataset has {num_classes}; wrong split file or folder")
    imgs = base / str(image_dir)  # YAML reads EuroSAT's `2750` as a number

    def files(rows, tf, where):
        return ImageFiles([imgs / p for p, _, _ in rows], [y for _, y, _ in rows], tf, f"{path} [{where}]", fix)

    fit = items["train"] + items["val"] if trainval else items["train"]
    return Splits(
        train=files(fit, transforms["train"], "train+val" if trainval else "train"),
        val=files(items["val"], transforms["eval"], "val"),
        _test=lambda: files(items["test"], transforms["eval"], "test"),
        num_classes=k, class_names=[names[i] for i in range(k)],
        info={"source": str(path), "images": str(imgs), "trainval": trainval,
              "sizes": {"train": len(items["train"]), "val": len(items["val"]),
                        "trainval": len(items["train"]) + len(items["val"])}},
    )
