"""The FGVC benchmark as VPT ships it: ``train.json``, ``val.json``, ``test.json`` per dataset.

Each JSON maps an image path (relative to the dataset's image folder) to a label. Labels may be
1-based or sparse (CUB's are 1..200), so they are mapped, in sorted order, to 0..K-1 as VPT does.
"""
from __future__ import annotations

import json
from pathlib import Path

from .base import DataError, Splits, register_loader
from .images import OUTSIDE, ImageFiles, find_folder, outside, require_file

PARENTS = ("", "fgvc", "FGVC")
IMAGE_DIRS = ("images", "Images", "")  # CUB/NABirds: images/, Dogs: Images/, Flowers/Cars: the folder itself


def read_json(path: Path, fix: str) -> dict[str, int]:
    try:
        anno = json.loads(require_file(path, fix).read_text())
        anno = {str(k): int(v) for k, v in anno.items()}
    except (ValueError, AttributeError, TypeError) as e:
        raise DataError(f"{path}: not a JSON object of image path -> integer label ({e}); {fix}") from None
    if not anno:
        raise DataError(f"empty split: {path} lists no images; {fix}")
    if (bad := next((k for k in anno if outside(k)), None)) is not None:
        raise DataError(f"{path}: {bad!r} is outside the dataset folder {path.parent}; {OUTSIDE}")
    return anno


def image_base(folder: Path, image_dir: str | None, first: str, fix: str) -> Path:
    """The folder the JSON's paths are relative to: the configured one, else the first that has them."""
    candidates = [image_dir] if image_dir is not None else IMAGE_DIRS
    for c in candidates:
        if (folder / c / first).is_file():
            return folder / c
    tried = ", ".join(str(folder / c / first) for c in candidates)
    raise DataError(f"images of {folder / 'train.json'} not found (looked for {tried}); {fix}")


def class_names_from_dirs(paths: list[str], labels: list[int], k: int) -> list[str]:
    """Parent folder names when they name the classes one-to-one (CUB, Dogs), else the label numbers."""
    by_label: dict[int, set] = {}
    for p, y in zip(paths, labels):
        by_label.setdefault(y, set()).add(Path(p).parent.name)
    names = [next(iter(by_label.get(i, {""}))) for i in range(k)]
    one_each = all(len(by_label.get(i, ())) == 1 for i in range(k))
    return names if one_each and len(set(names)) == k and all(names) else [str(i) for i in range(k)]


@register_loader("fgvc_json")
def load_fgvc_json(root, transforms, folder, image_dir: str | None = None, num_classes: int | None = None,
                   trainval: bool = False):
    """``trainval=True`` (final runs) trains on train.json + val.json; ``val`` is always val.json."""
    fix = "put the dataset's images and VPT's train/val/test.json in that folder (see `apbench data prepare`)"
    base = find_folder(root, folder, PARENTS, "FGVC dataset", fix)
    anno = {s: read_json(base / f"{s}.json", fix) for s in ("train", "val")}
    ids = sorted(set(anno["train"].values()) | set(anno["val"].values()))
    if num_classes is not None and len(ids) != num_classes:
        raise DataError(f"{base}: train.json + val.json have {len(ids)} distinct labels, the dataset has "
                        f"{num_classes}; the folder holds another dataset or its JSONs are incomplete")
    to_idx = {c: i for i, c in enumerate(ids)}
    imgs = image_base(base, image_dir, next(iter(anno["train"])), fix)

    def files(split: str, a: dict, tf):
        where = str(base / f"{split}.json")
        unknown = sorted(set(a.values()) - set(to_idx))
        if unknown:
            raise DataError(f"{where}: labels {unknown[:5]} do not occur in train/val; the JSONs are from different datasets")
        return ImageFiles([imgs / p for p in a], [to_idx[y] for y in a.values()], tf, where, fix)

    fit = {**anno["train"], **anno["val"]} if trainval else anno["train"]
    train = files("train", fit, transforms["train"])
    all_paths = list(anno["train"]) + list(anno["val"])
    names = class_names_from_dirs(all_paths, [to_idx[y] for y in list(anno["train"].values()) + list(anno["val"].values())], len(ids))
    return Splits(
        train=train, val=files("val", anno["val"], transforms["eval"]),
        _test=lambda: files("test", read_json(base / "test.json", fix), transforms["eval"]),
        num_classes=len(ids), class_names=names,
        info={"source": str(base), "images": str(imgs), "trainval": trainval,
              "sizes": {"train": len(anno["train"]), "val": len(anno["val"]),
                        "trainval": len(anno["train"]) + len(anno["val"])}},
    )
