"""Dataset registry: ``build(cfg, preprocessing)`` returns the splits of one dataset."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping

from . import fashion_mnist  # noqa: F401  (registration)
from .base import LOADERS, DataError, Splits
from .transforms import build_transform, is_deterministic


def build(cfg: Mapping[str, Any], preprocessing: dict, data_root: str | None = None) -> Splits:
    """``cfg``: the dataset config (``format`` picks the loader; the rest are its arguments)."""
    cfg = dict(cfg)
    fmt = cfg.pop("format")
    if fmt not in LOADERS:
        raise DataError(f"unknown dataset format {fmt!r}; available: {', '.join(sorted(LOADERS))}")
    augment = cfg.pop("augment", "none")
    transforms = {"train": build_transform(preprocessing, True, augment),
                  "eval": build_transform(preprocessing, False, augment)}
    expected_classes = cfg.pop("num_classes", None)
    for key in ("name", "group", "protocol"):
        cfg.pop(key, None)
    root = cfg.pop("root", None)
    if root and not Path(root).is_dir():  # an explicit root that is wrong must not fall back elsewhere
        raise DataError(f"dataset.root={root} is not a directory; point it at the folder holding the data, "
                        "or leave it unset to search paths.data_root")
    if root and "search_system" in inspect.signature(LOADERS[fmt]).parameters:
        cfg.setdefault("search_system", False)  # an explicit root is the only place searched
    splits = LOADERS[fmt](root or data_root, transforms, **cfg)
    if expected_classes is not None and splits.num_classes != int(expected_classes):
        raise DataError(
            f"dataset.num_classes is {expected_classes} but the data found has {splits.num_classes} classes "
            f"({splits.info.get('source', '?')}); fix the data root or dataset.num_classes"
        )
    splits.info["augment"] = augment
    splits.info["deterministic_train"] = is_deterministic(augment)
    return splits


__all__ = ["build", "DataError", "Splits", "LOADERS"]
