"""scikit-learn's bundled handwritten digits (UCI optdigits test set): 1,797 8x8 images, 10 classes.

A second real dataset that needs no download: the images ship inside scikit-learn
(``sklearn.datasets.load_digits``). Pixel values 0..16 are scaled to uint8 0..255 (ink is bright on
a dark background, as in Fashion-MNIST); the model's transform upsamples them to its input size.
Split, fixed by ``split_seed`` and independent of the run seed: ``train_size`` and ``val_size``
balanced over the classes, and every remaining image as the test set (797 with the defaults).
"""
from __future__ import annotations

import numpy as np

from .base import DataError, Splits, register_loader
from .fashion_mnist import balanced_subset
from .images import ArrayImages

NUM_CLASSES = 10
SOURCE = "sklearn.datasets.load_digits"


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as uint8 (N, 8, 8) and their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("dataset format 'sklearn_digits' needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, d.target.astype(np.int64)


def split_indices(labels: np.ndarray, train_size: int, val_size: int, split_seed: int):
    """Sorted train / val / test indices: train and val balanced, test = every other image."""
    rng = np.random.default_rng(split_seed)
    tr = balanced_subset(labels, train_size // NUM_CLASSES, rng)
    va = balanced_subset(labels, val_size // NUM_CLASSES, rng, exclude=tr)
    te = np.setdiff1d(np.arange(len(labels)), np.concatenate([tr, va]))
    return tr, va, te


@register_loader("sklearn_digits")
def load_sklearn_digits(root, transforms, train_size=800, val_size=200, split_seed=0, trainval=False, **_):
    """``root`` is unused (the data is inside scikit-learn); ``trainval=True`` trains on train+val."""
    images, labels = digits_arrays()
    if train_size % NUM_CLASSES or val_size % NUM_CLASSES:
        raise DataError(f"train_size and val_size must be multiples of {NUM_CLASSES} (balanced classes)")
    if train_size + val_size >= len(labels):
        raise DataError(f"train_size + val_size = {train_size + val_size} leaves no test images of {len(labels)}")
    tr, va, te = split_indices(labels, train_size, val_size, split_seed)
    fit = np.sort(np.concatenate([tr, va])) if trainval else tr
    return Splits(
        train=ArrayImages(images[fit], labels[fit], transforms["train"], source=SOURCE),
        val=ArrayImages(images[va], labels[va], transforms["eval"], source=SOURCE),
        _test=lambda: ArrayImages(images[te], labels[te], transforms["eval"], source=SOURCE),
        num_classes=NUM_CLASSES, class_names=[str(c) for c in range(NUM_CLASSES)],
        info={"source": SOURCE, "train": len(fit), "val": len(va), "test": len(te),
              "split_seed": split_seed, "trainval": trainval},
    )
