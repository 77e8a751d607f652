"""A user's own data: one folder per class, split by folders or by list files.

Layout A (folders): ``<root>/<path>/{train,val,test}/<class>/<image>``; ``val`` may be absent, then it
is carved from train by ``val_fraction`` and ``split_seed``.
Layout B (lists): ``<root>/<path>/<class>/<image>`` plus list files named in ``lists``
(``{train: train.txt, val: val.txt, test: test.txt}``), one ``class/image`` path per line (an optional
trailing integer label overrides the folder). Class names are the sorted class folders of train.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import DataError, MissingData, Splits, register_loader
from .images import IMAGE_EXTS, OUTSIDE, ImageFiles, carve, need_root, outside

FIX = "lay the data out as <path>/{train,val,test}/<class>/<image> (val optional) or give dataset.lists"


def scan(folder: Path) -> dict[str, list[Path]]:
    """class folder name -> its image files (sorted), for the class folders directly under ``folder``."""
    out = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_EXTS and f.is_file())
        if files:
            out[d.name] = files
    if not out:
        raise DataError(f"empty split: {folder} has no class folders with images ({', '.join(IMAGE_EXTS)}); {FIX}")
    return out


def from_folders(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    found = scan(folder)
    extra = sorted(set(found) - set(classes))
    if extra:
        raise DataError(f"{folder} has class folders that train does not: {extra[:5]}; {FIX}")
    paths = [p for c in found for p in found[c]]
    labels = [classes.index(c) for c in found for _ in found[c]]
    return paths, labels


def from_list(base: Path, list_file: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    if not list_file.is_file():
        raise MissingData(f"{list_file} is missing; {FIX}")
    paths, labels = [], []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        labelled = len(parts) == 2 and re.fullmatch(r"[-+]?\d+", parts[1]) is not None
        rel, y = (parts[0], int(parts[1])) if labelled else (line.strip(), None)
        if outside(rel):
            raise DataError(f"{list_file}:{n}: {rel!r} is outside the dataset folder {base}; {OUTSIDE}; {FIX}")
        if y is None:
            cls = Path(rel).parts[0]
            if cls not in classes:
                raise DataError(f"{list_file}:{n}: {rel!r} is not under a class folder of {base}; {FIX}")
            y = classes.index(cls)
        elif not 0 <= y < len(classes):
            raise DataError(f"{list_file}:{n}: label {y} is out of range: {base} has {len(classes)} class folders, "
                            f"so labels are 0..{len(classes) - 1} ({', '.join(classes[:5])}"
                            f"{', ...' if len(classes) > 5 else ''}, in sorted order); fix the label or leave it "
                            "out to take the class from the folder")
        paths.append(base / rel)
        labels.append(y)
    if not paths:
        raise DataError(f"empty split: {list_file} lists no images; {FIX}")
    return paths, labels


@register_loader("image_folder")
def load_image_folder(root, transforms, path: str = ".", lists: dict | None = None, val_fraction: float = 0.1,
                      split_seed: int = 0, num_classes: int | None = None, trainval: bool = False):
    if not Path(path).expanduser().is_absolute() and not root:
        raise MissingData(f"dataset.path={path} is relative and no data root is set: give dataset.path=/abs/folder, "
                          "or set paths.data_root (or $APBENCH_DATA) to the folder that holds it")
    base = Path(path).expanduser() if Path(path).expanduser().is_absolute() else need_root(root) / path
    if not base.is_dir():
        where = "" if Path(path).expanduser().is_absolute() else f" (dataset.path={path} under the data root {root})"
        raise MissingData(f"{base} does not exist{where}; set dataset.path to your image folder "
                          f"(absolute, or relative to paths.data_root); {FIX}")
    if lists:
        classes = sorted(scan(base))
        get = lambda s: from_list(base, base / lists[s], classes) if lists.get(s) else None
        where = {s: str(base / f) for s, f in lists.items() if f}
    else:
        if not (base / "train").is_dir():
            raise MissingData(f"{base / 'train'} does not exist; {FIX}")
        classes = sorted(scan(base / "train"))
        get = lambda s: from_folders(base / s, classes) if (base / s).is_dir() else None
        where = {s: str(base / s) for s in ("train", "val", "test")}
    if num_classes not in (None, 0) and len(classes) != num_classes:
        raise DataError(f"{base}: {len(classes)} class folders, dataset.num_classes is {num_classes}; {FIX}")
    train = get("train")
    if train is None:
        raise MissingData(f"no train split in {base}; {FIX}")
    val = get("val")
    carved = val is None
    if carved:  # fixed by split_seed, independent of the run seed
        tr, va = carve(len(train[0]), val_fraction, split_seed)
        pick = lambda idx: ([train[0][i] for i in idx], [train[1][i] for i in idx])
        train, val = pick(tr), pick(va)
    fit = (train[0] + val[0], train[1] + val[1]) if trainval else train

    def test():
        t = get("test")
        if t is None:
            raise MissingData(f"no test split: {where.get('test', base / 'test')} is missing; {FIX}")
        return ImageFiles(*t, transforms["eval"], where.get("test", ""), FIX)

    src = where.get("train", str(base))
    return Splits(
        train=ImageFiles(*fit, transforms["train"], src + (" (+val)" if trainval else ""), FIX),
        val=ImageFiles(*val, transforms["eval"], src + " (carved val)" if carved else where.get("val", ""), FIX),
        _test=test, num_classes=len(classes), class_names=classes,
        info={"source": str(base), "val_carved": carved, "trainval": trainval,
              "sizes": {"train": len(train[0]), "val": len(val[0]), "trainval": len(train[0]) + len(val[0])}},
    )
