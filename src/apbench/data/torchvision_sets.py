"""CIFAR-10/100, SVHN and GTSRB in the layouts torchvision downloads, read by ``torchvision.datasets``.

Never downloads here (``apbench data prepare`` does). The official train set is split into train/val
by ``val_fraction`` with ``split_seed`` (independent of the run seed); test is the official test set.
CIFAR's pickled batches are read by apbench itself through an unpickler that accepts plain data only
(``safe_pickle``), never by ``pickle.load``: a crafted batch is refused and its code does not run, and
a user's own (re-pickled) copy still loads. torchvision's md5 sums are checked by
``apbench data verify --checksums`` (they would refuse every copy that is not byte-identical).
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tvd
from torchvision.datasets.utils import check_integrity

from .base import DataError, MissingData, Splits, register_loader
from .images import ArrayImages, ImageFiles, carve, need_root
from .safe_pickle import RefusedPickle, load_plain


CIFAR = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}  # file names, folders and md5 sums: torchvision's


def read_cifar(name: str, root: Path, train: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images N x 32 x 32 x 3 uint8, labels, class names) of one official CIFAR split, as torchvision
    reads them, through the plain-data unpickler."""
    spec = CIFAR[name]
    folder = Path(root) / spec.base_folder
    data, targets = [], []
    for file_name, _ in spec.train_list if train else spec.test_list:
        entry = _plain(folder / file_name, name)
        data.append(entry["data"])
        targets.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
    meta = _plain(folder / spec.meta["filename"], name)
    images = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
    return images, np.asarray(targets), list(meta[spec.meta["key"]])


def _plain(path: Path, name: str):
    try:
        return load_plain(path)
    except RefusedPickle as e:
        raise DataError(f"{path}: refused, not loaded: {e}. A real {name} batch holds only arrays and lists; "
                        f"delete the folder and run `apbench data prepare {name}` (torchvision's download, "
                        f"md5-checked), or check your copy with `apbench data verify {name} --checksums`") from None


class SVHNOffline(tvd.SVHN):
    """SVHN read without hashing its .mat files at every load (`apbench data verify --checksums` does that)."""

    def _check_integrity(self) -> bool:
        return check_integrity(str(Path(self.root) / self.filename), None)


SETS = {  # name -> (where torchvision's root must hold it, what is there)
    "cifar10": ("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/"),
    "cifar100": ("cifar-100-python/train", "cifar-100-python/"),
    "svhn": ("train_32x32.mat", "train_32x32.mat, test_32x32.mat"),
    "gtsrb": ("gtsrb/GTSRB/Training", "gtsrb/GTSRB/Training/, gtsrb/GTSRB/Final_Test/Images/, gtsrb/GT-final_test.csv"),
}


def tv_root(root, name: str) -> Path:
    """``<root>/<name>`` (where ``apbench data prepare`` downloads to) or ``<root>`` itself."""
    root = need_root(root)
    marker, what = SETS[name]
    for c in (root / name, root):
        if (c / marker).exists():
            return c
    raise MissingData(f"{name} not found: looked for {root / name / marker} and {root / marker}; run "
                      f"`apbench data prepare {name} --root {root}` (downloads, needs internet) or put {what} in {root / name}/")


def open_split(name: str, root: Path, train: bool, transform):
    """One official split as an apbench dataset (arrays for CIFAR/SVHN, files for GTSRB)."""
    where = f"{root} ({name} {'train' if train else 'test'})"
    try:
        if name in CIFAR:
            images, labels, classes = read_cifar(name, root, train)
            return ArrayImages(images, labels, transform, where), classes
        if name == "svhn":
            ds = SVHNOffline(str(root), split="train" if train else "test", download=False)
            return ArrayImages(ds.data.transpose(0, 2, 3, 1), ds.labels, transform, where), [str(i) for i in range(10)]
        ds = tvd.GTSRB(str(root), split="train" if train else "test", download=False)
        paths, labels = zip(*ds._samples) if ds._samples else ((), ())
        names = sorted(p.name for p in (root / "gtsrb" / "GTSRB" / "Training").iterdir() if p.is_dir())
        return ImageFiles(paths, labels, transform, where), names
    except DataError:
        raise
    except RuntimeError as e:  # torchvision's "Dataset not found or corrupted"
        raise MissingData(f"{where}: {e}; run `apbench data prepare {name}` or restore the files") from None
    except FileNotFoundError as e:
        raise MissingData(f"{where}: {e.filename} is missing; run `apbench data prepare {name}` or restore it") from None
    # a truncated pickle or .mat, a bad csv, a pickle of other data
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, pickle.UnpicklingError) as e:
        raise DataError(f"{where}: unreadable ({type(e).__name__}: {e}); delete it and run "
                        f"`apbench data prepare {name}` again") from None


@register_loader("torchvision")
def load_torchvision(root, transforms, dataset: str, val_fraction: float = 0.1, split_seed: int = 0,
                     trainval: bool = False):
    """``trainval=True`` (final runs) trains on the whole official train set; ``val`` is still the carved part."""
    if dataset not in SETS:
        raise DataError(f"dataset.dataset={dataset!r} unknown; choose one of {', '.join(SETS)}")
    base = tv_root(root, dataset)
    full_train, classes = open_split(dataset, base, True, None)
    tr, va = carve(len(full_train), val_fraction, split_seed)
    fit = np.arange(len(full_train)) if trainval else tr
    if full_train.labels.max() >= len(classes):
        raise DataError(f"{base}: label {full_train.labels.max()} found but {dataset} has {len(classes)} classes")
    return Splits(
        train=_subset(full_train, fit, transforms["train"]), val=_subset(full_train, va, transforms["eval"]),
        _test=lambda: open_split(dataset, base, False, transforms["eval"])[0],
        num_classes=len(classes), class_names=classes,
        info={"source": str(base), "trainval": trainval, "val_fraction": val_fraction, "split_seed": split_seed,
              "sizes": {"train": len(tr), "val": len(va), "trainval": len(full_train)}},
    )


def _subset(ds, idx: np.ndarray, transform):
    """The same dataset type restricted to ``idx`` (keeps ``raw``/``labels`` for the cache and verify)."""
    out = type(ds).__new__(type(ds))
    if isinstance(ds, ArrayImages):
        out.images = ds.images[torch.from_numpy(idx)]
    else:
        out.paths = [ds.paths[i] for i in idx]
    out.labels, out.transform = ds.labels[idx], transform
    out.source = f"{ds.source}[{len(idx)} of {len(ds)}, {hashlib.sha1(idx.tobytes()).hexdigest()[:8]}]"
    return out
