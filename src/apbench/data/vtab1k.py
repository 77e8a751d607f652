"""VTAB-1k as the field shares it: one folder per task with images and list files.

``<root>/vtab-1k/<task folder>/{train800,val200,train800val200,test}.txt``, each line
``relative/path label`` (relative to the task folder). The folder names differ from the task names
in the shared copies (``cifar`` is CIFAR-100), so configs give an alias list in ``folder``.
"""
from __future__ import annotations

from pathlib import Path

from .base import DataError, Splits, register_loader
from .images import OUTSIDE, ImageFiles, dense_labels, find_folder, outside, require_file

PARENTS = ("vtab-1k", "vtab1k", "VTAB-1k")  # not the root itself: <root>/cifar100 may be torchvision's
LISTS = {"train": "train800.txt", "val": "val200.txt", "trainval": "train800val200.txt", "test": "test.txt"}


def read_list(path: Path, fix: str) -> tuple[list[Path], list[int]]:
    """Parse ``path label`` lines (paths may contain spaces: the label is the last field)."""
    paths, labels = [], []
    for n, line in enumerate(require_file(path, fix).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{n}: expected 'relative/path label', got {line!r}; {fix}")
        if outside(parts[0]):
            raise DataError(f"{path}:{n}: {parts[0]!r} is outside the task folder {path.parent}; {OUTSIDE}")
        paths.append(path.parent / parts[0])
        labels.append(int(parts[1]))
    if not paths:
        raise DataError(f"empty split: {path} lists no images; {fix}")
    return paths, labels


@register_loader("vtab1k")
def load_vtab1k(root, transforms, folder, num_classes: int | None = None, trainval: bool = False):
    """``trainval=True`` (final runs) trains on train800val200; ``val`` is always val200."""
    fix = "re-extract the VTAB-1k task folder (see `apbench data prepare` for the steps)"
    task = find_folder(root, folder, PARENTS, "VTAB-1k task", fix)
    split = {s: read_list(task / LISTS[s], fix) for s in ("train", "val")}
    tv = task / LISTS["trainval"]  # defined as the union of the two: rebuilt when a copy lacks it
    split["trainval"] = read_list(tv, fix) if tv.is_file() else tuple(a + b for a, b in zip(split["train"], split["val"]))
    # 800 images need not show every class (SUN397 has 397), so the config's count wins over inference.
    k = num_classes or max(dense_labels(labels, "", None) for _, labels in split.values())
    for s, (_, labels) in split.items():
        dense_labels(labels, str(task / LISTS[s]), k)
    fit = "trainval" if trainval else "train"

    def test():
        paths, labels = read_list(task / LISTS["test"], fix)
        dense_labels(labels, str(task / LISTS["test"]), k)
        return ImageFiles(paths, labels, transforms["eval"], str(task / LISTS["test"]), fix)

    return Splits(
        train=ImageFiles(*split[fit], transforms["train"], str(task / LISTS[fit]), fix),
        val=ImageFiles(*split["val"], transforms["eval"], str(task / LISTS["val"]), fix),
        _test=test, num_classes=k, class_names=[str(i) for i in range(k)],
        info={"source": str(task), "sizes": {s: len(v[0]) for s, v in split.items()}, "trainval": trainval},
    )
