"""Tiny datasets written in the real on-disk formats (8x8 images, a few per class), for the loader tests."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

PRE = {"input_size": (3, 8, 8), "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def image(path: Path, label: int, i: int = 0, size: int = 8) -> Path:
    """A small image whose colour encodes (label, i), so tests can tell images apart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size, size, 3), np.uint8)
    arr[..., 0], arr[..., 1] = 40 * label + 20, 30 * i + 10
    arr[: size // 2, :, 2] = 200  # some structure, so resizing is not trivial
    Image.fromarray(arr).save(path)
    return path


def write_vtab(root: Path, folder: str = "cifar", classes: int = 3, train: int = 2, val: int = 1, test: int = 2) -> Path:
    """``<root>/vtab-1k/<folder>/`` with images/ and the four list files; per-class counts."""
    task = root / "vtab-1k" / folder
    lists = {}
    for split, n in (("train800", train), ("val200", val), ("test", test)):
        lines = []
        for c in range(classes):
            for i in range(n):
                rel = f"images/{split}/{c}_{i}.jpg"
                image(task / rel, c, i)
                lines.append(f"{rel} {c}")
        lists[split] = lines
    lists["train800val200"] = lists["train800"] + lists["val200"]
    for name, lines in lists.items():
        (task / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return task


def write_fgvc(root: Path, folder: str = "CUB_200_2011", classes: int = 3, train: int = 2, val: int = 1,
               test: int = 2, image_dir: str = "images") -> Path:
    """VPT layout: ``<folder>/<image_dir>/<NNN.Class>/<img>`` and {train,val,test}.json with 1-based labels."""
    base = root / folder
    for split, n in (("train", train), ("val", val), ("test", test)):
        anno = {}
        for c in range(classes):
            for i in range(n):
                rel = f"{c + 1:03d}.Bird_{c}/{split}_{i}.jpg"
                image(base / image_dir / rel, c, i)
                anno[rel] = c + 1
        (base / f"{split}.json").write_text(json.dumps(anno))
    return base


def write_coop(root: Path, folder: str = "food-101", image_dir: str = "images",
               split_file: str = "split_zhou_Food101.json", classes: int = 3, per_split=(2, 1, 2)) -> Path:
    base = root / folder
    split = {}
    for s, n in zip(("train", "val", "test"), per_split):
        rows = []
        for c in range(classes):
            for i in range(n):
                rel = f"class_{c}/{s}_{i}.jpg"
                image(base / image_dir / rel, c, i)
                rows.append([rel, c, f"class {c}"])
        split[s] = rows
    (base / split_file).write_text(json.dumps(split))
    return base


def cifar_arrays(n: int, classes: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8), [i % classes for i in range(n)]


def write_cifar(root: Path, name: str = "cifar10", per_batch: int = 10) -> Path:
    """torchvision's extracted CIFAR archives: pickled dicts with row-major (N, 3072) uint8 ``data``."""
    if name == "cifar10":
        d = root / "cifar10" / "cifar-10-batches-py"
        train = [f"data_batch_{i}" for i in range(1, 6)]
        test, key, meta, meta_key, classes = "test_batch", "labels", "batches.meta", "label_names", 10
    else:
        d = root / "cifar100" / "cifar-100-python"
        train, test, key, meta, meta_key, classes = ["train"], "test", "fine_labels", "meta", "fine_label_names", 100
    d.mkdir(parents=True, exist_ok=True)
    n_train = per_batch if name == "cifar10" else 2 * classes
    for seed, f in enumerate(train + [test]):
        data, labels = cifar_arrays(n_train if f != test else classes, classes, seed)
        with open(d / f, "wb") as fh:
            pickle.dump({"data": data, key: labels}, fh)
    with open(d / meta, "wb") as fh:
        pickle.dump({meta_key: [f"class{i}" for i in range(classes)]}, fh)
    return d


def write_svhn(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    """``train_32x32.mat`` / ``test_32x32.mat``: X (32,32,3,N) uint8, y (N,1) with 10 for the digit 0."""
    from scipy.io import savemat

    d = root / "svhn"
    d.mkdir(parents=True, exist_ok=True)
    for seed, (split, n) in enumerate((("train", n_train), ("test", n_test))):
        X = np.random.default_rng(seed).integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[i % 10 if i % 10 else 10] for i in range(n)], dtype=np.uint8)
        savemat(d / f"{split}_32x32.mat", {"X": X, "y": y})
    return d


def write_gtsrb(root: Path, classes: int = 3, train: int = 2, test: int = 2) -> Path:
    """torchvision's GTSRB folders: Training/<00000>/*.ppm; Final_Test/Images/*.ppm + GT-final_test.csv."""
    g = root / "gtsrb" / "gtsrb"
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for c in range(classes):
        for i in range(train):
            image(g / "GTSRB" / "Training" / f"{c:05d}" / f"{c:05d}_{i:05d}.ppm", c, i)
        for i in range(test):
            name = f"{c * test + i:05d}.ppm"
            image(g / "GTSRB" / "Final_Test" / "Images" / name, c, i)
            rows.append(f"{name};8;8;0;0;7;7;{c}")
    (g / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return g


def write_image_folder(root: Path, name: str = "mine", classes=("cat", "dog", "owl"), splits=("train", "val", "test"),
                       per_class: int = 2) -> Path:
    base = root / name
    for s in splits:
        for c, cls in enumerate(classes):
            for i in range(per_class):
                image(base / s / cls / f"{i}.png", c, i)
    return base
