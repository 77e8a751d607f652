"""The real images the pkg suite is made of, each loaded once: Fashion-MNIST (Debian's
dataset-fashion-mnist), scikit-learn's digits, scikit-image's bundled images.

Fashion-MNIST object pools, shared by every task: train and val objects come only from the official
train split, test objects only from the official test split. A train image whose pixels equal a test
image's (by content digest) is left out of the train pools, so no test image reaches train or val even
where the two official splits share a picture. The train pool is cut once (``POOL_SEED``) into a train
and a val part, so train800 and val200 never show the same object.
"""
from __future__ import annotations

import hashlib
from functools import cached_property

import numpy as np
from PIL import Image

from ..base import DataError
from ..fashion_mnist import check_pair, find_files, read_idx

POOL_SEED = 27
VAL_OBJECTS = 0.2  # share of the (deduplicated) official train split kept for val objects


def digest(pixels: np.ndarray) -> str:
    """Content digest of an image's pixels (shape and bytes), 16 hex digits."""
    a = np.ascontiguousarray(pixels)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()[:16]


class Sources:
    """``fmnist_root``: where to look for the IDX files first (then Debian's package folder)."""

    def __init__(self, fmnist_root=None):
        self.fmnist_root = fmnist_root

    def _fmnist_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        img_path, lab_path = find_files(self.fmnist_root, split)
        images, labels = read_idx(img_path), read_idx(lab_path)
        check_pair(images, labels, img_path, lab_path)
        return images, labels.astype(np.int64)

    @cached_property
    def fmnist(self) -> dict:
        """{"train"|"test": (images, labels)} of the official splits."""
        return {s: self._fmnist_split(s) for s in ("train", "test")}

    @cached_property
    def test_digests(self) -> set[str]:
        return {digest(im) for im in self.fmnist["test"][0]}

    @cached_property
    def pools(self) -> dict[str, tuple[str, np.ndarray]]:
        """{our split: (official split, indices)}: train and val from the official train split
        (deduplicated against test, disjoint), test = the whole official test split."""
        images = self.fmnist["train"][0]
        clean = np.array([i for i, im in enumerate(images) if digest(im) not in self.test_digests])
        order = np.random.default_rng(POOL_SEED).permutation(clean)
        n_val = int(round(len(order) * VAL_OBJECTS))
        return {"train": ("train", np.sort(order[n_val:])), "val": ("train", np.sort(order[:n_val])),
                "test": ("test", np.arange(len(self.fmnist["test"][0])))}

    def fmnist_object(self, official: str, index: int) -> np.ndarray:
        return self.fmnist[official][0][index]

    def object_ref(self, official: str, index: int) -> dict:
        """What an image's metadata says about one Fashion-MNIST object it shows."""
        return {"split": official, "index": int(index), "digest": digest(self.fmnist_object(official, index))}

    @cached_property
    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        from ..sklearn_digits import digits_arrays
        return digits_arrays()

    def skimage_gray(self, name: str) -> np.ndarray:
        """One of scikit-image's bundled images as 8-bit grey (PIL's ITU-R 601 luma for colour ones)."""
        return self._skimage[name]

    @cached_property
    def _skimage(self) -> dict:
        return _SkimageImages()

    def versions(self) -> dict:
        """Versions of the packages the written images depend on (into the task's manifest)."""
        from importlib.metadata import PackageNotFoundError, version
        out = {}
        for pkg in ("numpy", "pillow", "scikit-learn", "scikit-image"):
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                out[pkg] = None
        return out


class _SkimageImages(dict):
    def __missing__(self, name: str) -> np.ndarray:
        try:
            import skimage.data
        except ImportError:
            raise DataError("the pkg_texture task needs scikit-image: pip install scikit-image") from None
        a = np.asarray(getattr(skimage.data, name)())
        if a.dtype != np.uint8:
            raise DataError(f"skimage.data.{name}() is {a.dtype}, not 8-bit: choose another image")
        img = Image.fromarray(a[..., :3]).convert("L") if a.ndim == 3 else Image.fromarray(a)
        self[name] = np.asarray(img)
        return self[name]
