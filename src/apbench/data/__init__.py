"""Dataset registry: ``build(cfg, preprocessing)`` returns the splits of one dataset."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping

from . import coop_split, fashion_mnist, fgvc_json, image_folder, torchvision_sets, vtab1k  # noqa: F401  (registration)
from . import sklearn_digits  # noqa: F401  (registration)
from .base import LOADERS, DataError, MissingData, Splits
from .cache import cache_splits
from .transforms import build_transform, collate, is_deterministic

# Keys every dataset config may carry that ``build`` consumes itself (the rest go to the loader).
BUILD_KEYS = {"name", "format", "group", "protocol", "num_classes", "augment", "root", "cache", "cache_dir"}


def loader_kwargs(cfg: Mapping[str, Any]) -> tuple[str, dict]:
    """(format, the loader's own arguments) of a dataset config; ``num_classes`` goes along when the
    loader takes it (loaders that cannot infer the count from few images need it)."""
    fmt = cfg["format"]
    if fmt not in LOADERS:
        raise DataError(f"unknown dataset format {fmt!r}; available: {', '.join(sorted(LOADERS))}")
    kwargs = {k: v for k, v in cfg.items() if k not in BUILD_KEYS}
    if cfg.get("num_classes") and "num_classes" in inspect.signature(LOADERS[fmt]).parameters:
        kwargs["num_classes"] = int(cfg["num_classes"])
    return fmt, kwargs


def build(cfg: Mapping[str, Any], preprocessing: dict, data_root: str | None = None) -> Splits:
    """``cfg``: the dataset config (``format`` picks the loader; the rest are its arguments)."""
    cfg = dict(cfg)
    fmt, kwargs = loader_kwargs(cfg)
    augment = cfg.get("augment", "none")
    transforms = {"train": build_transform(preprocessing, True, augment),
                  "eval": build_transform(preprocessing, False, augment)}
    expected_classes = cfg.get("num_classes")
    root = cfg.get("root")
    if root and not Path(root).is_dir():  # an explicit root that is wrong must not fall back elsewhere
        raise DataError(f"dataset.root={root} is not a directory; point it at the folder holding the data, "
                        "or leave it unset to search paths.data_root")
    if root and "search_system" in inspect.signature(LOADERS[fmt]).parameters:
        kwargs.setdefault("search_system", False)  # an explicit root is the only place searched
    splits = LOADERS[fmt](root or data_root, transforms, **kwargs)
    if expected_classes and splits.num_classes != int(expected_classes):
        raise DataError(
            f"dataset.num_classes is {expected_classes} but the data found has {splits.num_classes} classes "
            f"({splits.info.get('source', '?')}); fix the data root or dataset.num_classes"
        )
    if splits.num_classes < 2:  # one class: 100 % accuracy that means nothing
        raise DataError(f"{splits.info.get('source', fmt)}: {splits.num_classes} class found "
                        f"({', '.join(splits.class_names) or '-'}); a classification task needs two classes or more "
                        "(for an image folder: one folder per class under train/)")
    _check_readable(splits)
    splits = cache_splits(splits, cfg.get("name", fmt), cfg.get("cache") or "none", cfg.get("cache_dir"))
    splits.info["augment"] = augment
    splits.info["deterministic_train"] = is_deterministic(augment)
    return splits


def _check_readable(splits: Splits) -> None:
    """Empty or unidentifiable image files are refused now, not at the step that reads them."""
    for name in ("train", "val"):
        ds = getattr(splits, name)
        if hasattr(ds, "check_readable"):
            ds.check_readable(name)
    open_test = splits._test

    def test():
        ds = open_test()
        if hasattr(ds, "check_readable"):
            ds.check_readable("test")
        return ds
    splits._test = test


__all__ = ["build", "collate", "loader_kwargs", "BUILD_KEYS", "DataError", "MissingData", "Splits", "LOADERS"]
