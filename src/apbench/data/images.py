"""Datasets shared by the loaders: images on disk or in an array, plus path and list helpers.

Every dataset here exposes ``labels`` and ``raw(i)`` (the decoded image before any transform), so the
cache and ``apbench data verify`` work the same way for every on-disk format.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .base import DataError, MissingData

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DECODE_VERSION = "rgb2"  # rgb2: 16/32-bit grey scaled by 257 (was clipped to white)
VERIFY_HINT = "run `apbench data verify` on the data root to list every broken file"


class ImageDataset(Dataset):
    """(image, label) pairs; ``transform`` is applied to ``raw(i)`` in ``__getitem__``."""

    labels: np.ndarray
    transform = None
    source = ""

    def raw(self, i: int):
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Identity of the content, for cache keys: changes when the files or labels change."""
        h = hashlib.sha1(self.source.encode())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        img = self.raw(i)
        return (self.transform(img) if self.transform else img), int(self.labels[i])


class ImageFiles(ImageDataset):
    """Image files with integer labels; files are checked to exist when the dataset is made."""

    def __init__(self, paths: Sequence[str | Path], labels: Sequence[int], transform=None,
                 source: str = "", fix: str = ""):
        if len(paths) == 0:
            raise DataError(f"empty split: {source or 'the list'} has no images; {fix or VERIFY_HINT}")
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform, self.source = transform, source
        # Fail before training, not at epoch 3: a stat per file is cheap next to one decode.
        missing = [p for p in self.paths if not os.path.isfile(p)]
        if missing:
            raise MissingData(f"{len(missing)} of {len(self.paths)} images listed in {source} are missing, "
                              f"e.g. {missing[0]}; {fix or 're-extract the image archive into that folder'}")

    def fingerprint(self) -> str:
        h = hashlib.sha1(super().fingerprint().encode())
        h.update("\n".join(self.paths).encode())
        h.update(DECODE_VERSION.encode())  # a disk cache decoded by an older to_rgb is not reused
        return h.hexdigest()[:16]

    def raw(self, i: int) -> Image.Image:
        try:
            with Image.open(self.paths[i]) as im:
                return to_rgb(im)
        except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for truncated / non-image files
            raise DataError(f"{self.paths[i]}: unreadable image ({e}); re-extract or re-download it; "
                            f"{VERIFY_HINT}") from None

    def check_readable(self, what: str = "") -> None:
        """Refuse empty files and files PIL cannot identify, before training: one ``stat`` and a
        header read per file (``Image.open`` is lazy: no pixels are decoded), in a few threads.
        A file whose header is fine but whose pixels are truncated is still only found when read
        (``apbench data verify`` decodes every image)."""
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            errors = [(p, e) for p, e in zip(self.paths, pool.map(header_error, self.paths)) if e]
        if errors:
            p, e = errors[0]
            raise DataError(f"{len(errors)} of {len(self.paths)} images of the {what or 'data'} split "
                            f"({self.source}) cannot be read, e.g. {p} ({e}); re-extract or re-download those "
                            f"files, or delete them; {VERIFY_HINT}")


def header_error(path: str) -> str | None:
    """Why ``path`` is no image (empty, or a header PIL does not know), or None."""
    try:
        if os.stat(path).st_size == 0:
            return "an empty file, 0 bytes"
        with Image.open(path):
            return None
    except (OSError, SyntaxError, ValueError) as e:  # UnidentifiedImageError is an OSError
        return f"{type(e).__name__}: {e}"


# 16-bit and 32-bit integer pixels scaled into 0..255 (PIL's own convert("RGB") clips them instead,
# so a 16-bit PNG becomes white). Both read as 16-bit: what 16-bit PNG/TIFF files hold; 32-bit
# values are clipped to 0..65535 first. Scaling by 257 maps 0 -> 0 and 65535 -> 255 exactly.
_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb(im: Image.Image) -> Image.Image:
    """``im`` as 8-bit RGB: 1, L, P, RGBA (alpha dropped, as torchvision's loader does), CMYK and the
    other modes through PIL; 16/32-bit integer grey scaled (see above)."""
    if im.mode in _WIDE:
        a = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        return Image.fromarray(((a + 128) // 257).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")


class ArrayImages(ImageDataset):
    """uint8 images (N,H,W) or (N,H,W,C) in memory, with labels; ``raw`` gives a (C,H,W) tensor."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None, source: str = ""):
        if len(images) == 0:
            raise DataError(f"empty split: {source or 'the array'} holds no images to train or evaluate on")
        if len(images) != len(labels):
            raise DataError(f"{source}: {len(images)} images but {len(labels)} labels")
        images = np.ascontiguousarray(images)
        if not images.flags.writeable:  # np.frombuffer over a file's bytes: torch would share it (and warn)
            images = images.copy()
        self.images = torch.from_numpy(images)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform, self.source = transform, source

    def raw(self, i: int) -> torch.Tensor:
        img = self.images[i]
        return img.unsqueeze(0) if img.ndim == 2 else img.permute(2, 0, 1)


def need_root(root) -> Path:
    if not root:
        raise MissingData("no data root given: set paths.data_root (or the APBENCH_DATA environment variable) "
                          "or dataset.root, or pass --root")
    return Path(root).expanduser()


def find_folder(root, names: str | Sequence[str], parents: Sequence[str] = ("",), what: str = "dataset",
                fix: str = "") -> Path:
    """The first ``<root>/<parent>/<name>`` that is a folder; names are the aliases shared copies use."""
    root = need_root(root)
    names = [names] if isinstance(names, str) else list(names)
    for parent in parents:
        for name in names:
            p = Path(name).expanduser() if Path(name).is_absolute() else root / parent / name
            if p.is_dir():
                return p
    under = ", ".join(str(root / p) + "/" for p in parents)
    raise MissingData(f"{what} folder not found: none of {', '.join(names)} exists under {under}; {fix}".rstrip("; "))


def outside(rel: str) -> bool:
    """A path in a split list that leaves the folder it is relative to (absolute, or ``..`` leading out):
    refused, so that a list cannot point a run at files that are not the dataset's."""
    norm = os.path.normpath(rel)
    return os.path.isabs(rel) or norm == ".." or norm.startswith(".." + os.sep)


OUTSIDE = "list files name images relative to the dataset's folder, without '..' or an absolute path"


def require_file(path: Path, fix: str) -> Path:
    if not path.is_file():
        raise MissingData(f"{path} is missing; {fix}")
    return path


def carve(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (train, val) index arrays, val = ``fraction`` of n, fixed by ``seed``."""
    if not 0 < fraction < 1:
        raise DataError(f"val_fraction={fraction} must be between 0 and 1")
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise DataError(f"cannot carve a validation split of {n_val} from {n} training images")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def dense_labels(labels: Sequence[int], where: str, num_classes: int | None) -> int:
    """Check integer labels lie in [0, num_classes); return the class count (given or inferred)."""
    arr = np.asarray(labels)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise DataError(f"{where}: negative label {lo}")
    if num_classes is not None and hi >= num_classes:
        raise DataError(f"{where}: label {hi} found but the dataset has {num_classes} classes "
                        f"(labels 0..{num_classes - 1}); the folder holds another dataset or "
                        f"dataset.num_classes is wrong")
    return int(num_classes) if num_classes is not None else hi + 1
