"""Fashion-MNIST from its original IDX files, with a VTAB-style 1k protocol.

The files are looked for in the data root (``<root>/fashion-mnist``, ``<root>``, or torchvision's
``<root>/FashionMNIST/raw``) and in Debian's ``dataset-fashion-mnist`` package folder.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from .base import DataError, Splits, register_loader
from .images import ArrayImages

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
PREPARE_HINT = ("install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the four "
                "original *-ubyte.gz files in <data_root>/fashion-mnist/")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic 0x0000 08 <ndim>, big-endian sizes, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"magic {raw[:4].hex()} is not an unsigned-byte IDX header")
        dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        if data.size != int(np.prod(dims)):
            raise ValueError(f"holds {data.size} bytes of data, header says {int(np.prod(dims))}")
    except (OSError, EOFError, ValueError, struct.error) as e:
        raise DataError(f"{path}: unreadable IDX file ({e}); re-download it or {PREPARE_HINT}") from None
    return data.reshape(dims)


def find_files(root: str | Path | None, split: str, search_system: bool = True) -> tuple[Path, Path]:
    candidates = []
    if root:
        root = Path(root)
        candidates += [root / "fashion-mnist", root, root / "FashionMNIST" / "raw"]
    if search_system or not root:
        candidates.append(DEBIAN_DIR)
    for folder in candidates:
        found = []
        for stem in FILES[split]:
            hits = [folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).is_file()]
            found.append(hits[0] if hits else None)
        if all(found):
            return found[0], found[1]
    raise DataError(f"Fashion-MNIST {split} files not found in {[str(c) for c in candidates]}; {PREPARE_HINT}")


def check_pair(images: np.ndarray, labels: np.ndarray, img_path: Path, lab_path: Path) -> None:
    """Catch swapped, mismatched or foreign files here, not as a shape error in the middle of training."""
    if images.ndim != 3:
        raise DataError(f"{img_path} holds an array of shape {images.shape}, not N x H x W images; "
                        f"check that the images and labels files are not swapped ({PREPARE_HINT})")
    if labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{img_path} has {len(images)} images but {lab_path} has {labels.shape} labels; "
                        f"they must be the matching pair of one split ({PREPARE_HINT})")
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{lab_path} has label {int(labels.max())}; Fashion-MNIST labels are 0..{len(CLASSES) - 1} "
                        f"({PREPARE_HINT})")


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator, exclude=None) -> np.ndarray:
    """Indices of ``per_class`` random images of each class (sorted), avoiding ``exclude``."""
    taken = np.zeros(len(labels), bool)
    if exclude is not None:
        taken[exclude] = True
    out = []
    for c in np.unique(labels):
        pool = np.flatnonzero((labels == c) & ~taken)
        if len(pool) < per_class:
            raise DataError(f"class {c} has {len(pool)} images, {per_class} needed; "
                            "lower dataset.train_size / val_size / test_size")
        out.append(rng.choice(pool, per_class, replace=False))
    return np.sort(np.concatenate(out))


@register_loader("fashion_mnist")
def load_fashion_mnist(root, transforms, train_size=800, val_size=200, test_size=None,
                       split_seed=0, trainval=False, search_system=True, **_):
    """VTAB-style 1k protocol: ``train_size`` + ``val_size`` balanced images from the official
    training set (fixed by ``split_seed``, independent of the run seed); test from the official test
    set, all of it or a fixed balanced subset of ``test_size`` images. ``trainval=True`` trains on
    train+val (the protocol's final runs) and evaluates ``val`` as before. ``search_system=False``
    looks only in ``root``, never in the Debian package folder."""
    img_path, lab_path = find_files(root, "train", search_system)
    images, labels = read_idx(img_path), read_idx(lab_path)
    check_pair(images, labels, img_path, lab_path)
    k = len(CLASSES)
    if not (isinstance(train_size, int) and isinstance(val_size, int) and train_size > 0 and val_size > 0) \
            or train_size % k or val_size % k:
        raise DataError(f"dataset.train_size={train_size!r} and dataset.val_size={val_size!r} must be positive "
                        f"multiples of {k} (balanced classes); e.g. dataset.train_size={10 * k}")
    rng = np.random.default_rng(split_seed)
    tr = balanced_subset(labels, train_size // k, rng)
    va = balanced_subset(labels, val_size // k, rng, exclude=tr)
    fit = np.sort(np.concatenate([tr, va])) if trainval else tr

    def test():
        ti, tl = find_files(root, "test", search_system)
        timg, tlab = read_idx(ti), read_idx(tl)
        check_pair(timg, tlab, ti, tl)
        if test_size:
            idx = balanced_subset(tlab, test_size // k, np.random.default_rng(split_seed + 1))
            timg, tlab = timg[idx], tlab[idx]
        return ArrayImages(timg, tlab, transforms["eval"], source=str(ti))

    return Splits(
        train=ArrayImages(images[fit], labels[fit], transforms["train"], source=f"{img_path}[train]"),
        val=ArrayImages(images[va], labels[va], transforms["eval"], source=f"{img_path}[val]"),
        _test=test, num_classes=k, class_names=list(CLASSES),
        info={"source": str(img_path.parent), "train": len(fit), "val": len(va),
              "test": test_size or "all (10000)", "split_seed": split_seed, "trainval": trainval},
    )
