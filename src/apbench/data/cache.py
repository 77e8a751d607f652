"""Decode-once caches for small sets (VTAB-1k / FGVC scale).

Each image is decoded and resized once (the deterministic ``pre`` stage of the transform, at the
resize-before-crop size) into a uint8 (N,3,H,W) store; every later read only runs ``post`` (random
crop/flip, float conversion, normalization), so epochs after the first decode no JPEG.

``memory``: a numpy array in this process; train and val only (test is read once per run, and
VTAB test sets reach 74k images). Kept for the current dataset, so a sweep over methods in one
process decodes once. ``disk``: a ``.npy`` per split under ``cache_dir``, memory-mapped, all splits;
reused across processes and runs. Keys: dataset name, split, content fingerprint, resize size and
interpolation (mean/std are applied after the cache, so one store serves every model of that size).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import DataError, Splits
from .images import ImageDataset
from .transforms import serial

MODES = ("none", "memory", "disk")
_MEMORY: dict[str, np.ndarray] = {}


def default_cache_dir() -> Path:
    return Path(os.environ.get("APBENCH_CACHE_DIR") or Path.home() / ".cache" / "apbench" / "data")


class CachedImages(Dataset):
    """``base`` with ``base.transform.pre`` applied once to every image; ``post`` per item."""

    def __init__(self, base: ImageDataset, key: str, mode: str, cache_dir: Path | None = None, workers: int | None = None):
        self.base, self.key, self.labels = base, key, base.labels
        self.post = base.transform.post
        if mode == "memory":
            if key not in _MEMORY:
                for k in [k for k in _MEMORY if k.split("/")[0] != key.split("/")[0]]:
                    del _MEMORY[k]  # one dataset at a time: bounded memory across a sweep
                _MEMORY[key] = self._fill(np.empty, workers)
            self.store = _MEMORY[key]
        elif mode == "disk":
            path = Path(cache_dir or default_cache_dir()) / (key.replace("/", "__") + ".npy")
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
                store = self._fill(lambda shape, dtype: np.lib.format.open_memmap(tmp, "w+", dtype, shape), workers)
                store.flush()
                del store
                os.replace(tmp, path)  # atomic: concurrent runs never read a half-written store
            self.store = np.load(path, mmap_mode="r")
            if len(self.store) != len(base):
                raise DataError(f"{path}: cache holds {len(self.store)} images, the split {len(base)}; delete it")
        else:
            raise ValueError(f"cache mode {mode!r}; choose one of {', '.join(MODES)}")

    def _fill(self, alloc, workers):
        pre, n = self.base.transform.pre, len(self.base)
        first = self._pre(pre, 0)
        store = alloc((n, *first.shape), np.uint8)
        store[0] = first

        def put(i):
            img = self._pre(pre, i)
            if img.shape != first.shape:
                raise DataError(f"{self.base.source}: image {i} resized to {tuple(img.shape)}, others to {first.shape}")
            store[i] = img

        # PIL decoding and torchvision resizing release the GIL: threads give real parallelism here.
        with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(put, range(1, n)))
        return store

    def _pre(self, pre, i: int) -> np.ndarray:
        return pre(self.base.raw(i)).as_subclass(torch.Tensor).numpy()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        img = torch.from_numpy(np.array(self.store[i]))  # a copy: memmaps are read-only
        with serial():
            return self.post(img).as_subclass(torch.Tensor), int(self.labels[i])


def cache_splits(splits: Splits, name: str, mode: str, cache_dir: str | Path | None = None) -> Splits:
    """``splits`` with their datasets behind a cache (``mode`` none returns them unchanged)."""
    if mode not in MODES:
        raise DataError(f"dataset.cache={mode!r} is not valid; choose one of {', '.join(MODES)}")
    if mode == "none":
        return splits

    def wrap(ds, split):
        if not isinstance(ds, ImageDataset) or not hasattr(ds.transform, "pre"):
            return ds  # nothing this cache knows how to split; served uncached
        key = f"{name}/{split}-{ds.fingerprint()}-{ds.transform.key}"
        return CachedImages(ds, key, mode, Path(cache_dir) if cache_dir else None)

    test = splits._test
    splits.train = wrap(splits.train, "train")
    splits.val = wrap(splits.val, "val")
    if mode == "disk":
        splits._test = lambda: wrap(test(), "test")
    splits.info["cache"] = mode
    return splits
