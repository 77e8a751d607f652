"""Check a data root against the dataset configs and the manifest, before any run needs it.

For each dataset: open it through its loader exactly as a run would (so the same layout rules
apply), compare split sizes and class count with the manifest, and open every image file with PIL.
The result is one ``Report`` per dataset whose ``fix`` is the step that makes it ``ok``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import LOADERS, loader_kwargs
from .base import DataError, MissingData
from .manifest import MANIFEST, Entry

SIZE_ORDER = ("train", "val", "trainval", "test")


@dataclass
class Report:
    dataset: str
    status: str  # ok | missing | broken
    found: str
    expected: str
    fix: str


def conf_dir() -> Path:
    from ..config_dir import CONF_DIR
    return Path(CONF_DIR)


def compose_dataset(name: str, overrides: list[str] = ()) -> tuple[dict, str]:
    """(the composed ``dataset`` config, the default data root) as ``apbench run dataset=NAME OVERRIDES``
    sees them (``dataset.path=DIR`` for an image folder)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from ..hydra_guard import suggest_close_keys

    if not (conf_dir() / "dataset" / f"{name}.yaml").is_file():
        raise KeyError(name)
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"), suggest_close_keys():
        cfg = compose(config_name="config", overrides=[f"dataset={name}", *overrides])
    return OmegaConf.to_container(cfg.dataset, resolve=True), str(cfg.paths.data_root)


def suite_members(name: str) -> list[str] | None:
    """Datasets of ``conf/suite/NAME.yaml`` (its ``hydra.sweeper.params.dataset``), None if no such suite."""
    from omegaconf import OmegaConf

    path = conf_dir() / "suite" / f"{name}.yaml"
    if not path.is_file():
        return None
    return [m.strip() for m in str(OmegaConf.load(path).hydra.sweeper.params.dataset).split(",")]


def available() -> tuple[list[str], list[str]]:
    names = lambda sub: sorted(p.stem for p in (conf_dir() / sub).glob("*.yaml"))
    return names("dataset"), names("suite")


def check_image(path: str, decode: bool = True) -> str | None:
    """None if PIL can read ``path``; else the error. ``verify()`` checks the structure without
    decoding, so a truncated JPEG passes it; ``decode`` also loads the pixels to catch that."""
    try:
        with Image.open(path) as im:
            im.verify()
        if decode:
            with Image.open(path) as im:
                im.load()
    except Exception as e:  # noqa: BLE001  (PIL raises many types for broken files)
        return f"{type(e).__name__}: {e}"
    return None


def _sizes(sizes: dict, classes) -> str:
    parts = [f"{k} {sizes[k]}" for k in SIZE_ORDER if sizes.get(k) is not None]
    return ", ".join(parts + ([f"classes {classes}"] if classes else [])) or "-"


def _checksums(cfg: dict, root: str) -> list[str]:
    """md5 mismatches of the torchvision files (torchvision's own reference sums)."""
    from torchvision.datasets.utils import check_integrity

    from .torchvision_sets import SVHNOffline, CIFAR, tv_root

    name = cfg["dataset"]
    base = tv_root(root, name)
    if name in CIFAR:
        cls = CIFAR[name]
        files = [(base / cls.base_folder / f, md5) for f, md5 in cls.train_list + cls.test_list]
        files.append((base / cls.base_folder / cls.meta["filename"], cls.meta["md5"]))
    elif name == "svhn":
        files = [(base / v[1], v[2]) for k, v in SVHNOffline.split_list.items() if k != "extra"]
    else:
        return []  # GTSRB: torchvision checks the archives only; every image is opened instead
    return [str(f) for f, md5 in files if not check_integrity(str(f), md5)]


def verify_dataset(name: str, root: str | None = None, cfg: dict | None = None, entry: Entry | None = None,
                   decode: bool = True, checksums: bool = False, overrides: list[str] = ()) -> Report:
    """Report on one dataset config. ``cfg``/``entry`` default to the config file (with ``overrides``)
    and the manifest."""
    if cfg is None:
        cfg, default_root = compose_dataset(name, overrides)
        root = root or default_root
    entry = entry or MANIFEST.get(name) or Entry(0)
    get = entry.get.replace("<root>", str(cfg.get("root") or root))
    want_k = cfg.get("num_classes") or entry.num_classes or None
    want = {k: v for k, v in entry.sizes.items() if v is not None}
    expected = _sizes(want, want_k)
    fmt, kwargs = loader_kwargs(cfg)
    if "trainval" in kwargs:
        kwargs["trainval"] = False
    try:
        splits = LOADERS[fmt](cfg.get("root") or root, {"train": None, "eval": None}, **kwargs)
        test = splits.test()
    except MissingData as e:
        return Report(name, "missing", "-", expected, f"{e}" + (f". To get it: {get}" if get else ""))
    except DataError as e:
        return Report(name, "broken", "-", expected, f"{e}" + (f". To get a good copy: {get}" if get else ""))

    parts = [splits.train, splits.val, test]
    sizes = dict(splits.info.get("sizes") or {"train": len(splits.train), "val": len(splits.val)})
    sizes["test"] = len(test)
    labels = np.concatenate([np.asarray(ds.labels) for ds in parts if hasattr(ds, "labels")])
    found_k = len(np.unique(labels))
    problems = [f"{k} has {sizes[k]} images, expected {v}" for k, v in want.items() if k in sizes and sizes[k] != v]
    if found_k < 2:
        problems.append(f"{found_k} class found: a classification task needs two classes or more")
    for split, ds in (("train", splits.train), ("val", splits.val), ("test", test)):
        each = entry.per_class.get(split)
        if each and hasattr(ds, "labels"):
            counts = np.bincount(np.asarray(ds.labels), minlength=want_k or 0)
            if (counts != each).any():
                problems.append(f"{split} is not balanced as declared ({each} images per class): per-class counts "
                                f"{counts.tolist()}")
    if want_k and found_k != want_k:
        problems.append(f"{found_k} classes found, expected {want_k} (the folder holds another dataset, "
                        f"or splits are missing classes)")
    if checksums and fmt == "torchvision":
        bad = _checksums(cfg, root)
        problems += [f"md5 mismatch: {b}" for b in bad]
    paths = sorted({p for ds in parts for p in getattr(ds, "paths", ())})
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        errors = [(p, e) for p, e in zip(paths, pool.map(lambda p: check_image(p, decode), paths)) if e]
    if errors:
        p, e = errors[0]
        problems.append(f"{len(errors)} unreadable image(s), e.g. {p} ({e})")
    found = _sizes(sizes, found_k)
    if not problems:
        return Report(name, "ok", found, expected, "-")
    return Report(name, "broken", found, expected,
                  "; ".join(problems) + (f". Re-extract or re-download: {get}" if get else ""))


def targets(target: str) -> list[str]:
    """A suite's members (``NAME`` or ``+suite=NAME``, as `apbench run` spells it), or the one dataset;
    KeyError naming the choices otherwise."""
    target = target.removeprefix("+suite=").removeprefix("suite=")
    members = suite_members(target)
    if members is not None:
        return members
    datasets, suites = available()
    if target in datasets:
        return [target]
    raise KeyError(f"{target!r} is neither a suite ({', '.join(suites)}) nor a dataset config "
                   f"({', '.join(datasets)})")


def verify(target: str, root: str | None = None, decode: bool = True, checksums: bool = False,
           overrides: list[str] = ()) -> list[Report]:
    return [verify_dataset(n, root, decode=decode, checksums=checksums, overrides=overrides) for n in targets(target)]


def format_table(reports: list[Report]) -> str:
    head = ("dataset", "status", "found", "expected", "fix")
    rows = [head] + [(r.dataset, r.status, r.found, r.expected, r.fix) for r in reports]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4]
    out = [line(head), "  ".join("-" * w for w in widths) + "  ---"] + [line(r) for r in rows[1:]]
    n_ok = sum(r.status == "ok" for r in reports)
    out.append(f"{n_ok}/{len(reports)} ok")
    return "\n".join(out)
