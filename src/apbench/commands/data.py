"""``apbench data``: check a data root, fetch what can be fetched, say how to get the rest.

    apbench data verify SUITE|DATASET [dataset.KEY=VALUE ...] [--root DIR] [--quick] [--checksums]
    apbench data prepare DATASET|SUITE [--root DIR]      (the pkg suite's tasks are written here, offline)
    apbench data list
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import OneLineHelp


def verify_cmd(a) -> int:
    from hydra.errors import HydraException

    from ..data.verify import format_table, verify
    try:
        reports = verify(a.target, a.root, decode=not a.quick, checksums=a.checksums, overrides=a.overrides)
    except KeyError as e:
        print(f"apbench data verify: {e.args[0]}", file=sys.stderr)
        return 2
    except HydraException as e:  # a misspelt override
        print(f"apbench data verify: {e}", file=sys.stderr)
        return 2
    print(format_table(reports))
    return 0 if all(r.status == "ok" for r in reports) else 1


def download_torchvision(name: str, root: Path) -> None:
    """torchvision's own downloads (with their md5 checks) into ``<root>/<name>``."""
    from torchvision import datasets as tvd

    dest = root / name
    dest.mkdir(parents=True, exist_ok=True)
    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        cls(str(dest), train=True, download=True)
        cls(str(dest), train=False, download=True)
    elif name == "svhn":
        for split in ("train", "test"):
            tvd.SVHN(str(dest), split=split, download=True)
    else:
        for split in ("train", "test"):
            tvd.GTSRB(str(dest), split=split, download=True)


def prepare_pkg(names: list[str], root: Path) -> int:
    """Write pkg tasks from the images registry packages ship (nothing downloaded)."""
    from ..data.base import DataError
    from ..data.pkgsuite.sources import Sources
    from ..data.pkgsuite.write import prepare

    src = Sources(root)  # Fashion-MNIST: <root>/fashion-mnist/ first, then Debian's package folder
    for name in names:
        try:
            folder = prepare(name, root, src=src)
        except DataError as e:
            print(f"apbench data prepare: {name}: {e}", file=sys.stderr)
            return 2
        print(f"{name}: written to {folder}")
    target = "+suite=pkg" if len(names) > 1 else names[0]
    print(f"done; check it with: apbench data verify {target} --root {root}")
    return 0


def prepare_cmd(a) -> int:
    from ..data.pkgsuite import TASKS
    from ..data.verify import compose_dataset, suite_members
    members = suite_members(a.dataset.removeprefix("+suite="))
    if members is not None and set(members) <= set(TASKS):  # a suite that can be written here: all of it
        _, default_root = compose_dataset(members[0])
        return prepare_pkg(members, Path(a.root or default_root))
    try:
        cfg, default_root = compose_dataset(a.dataset)
    except KeyError:
        from ..data.verify import available
        print(f"apbench data prepare: no dataset config {a.dataset!r}; choose one of: "
              f"{', '.join(available()[0])}", file=sys.stderr)
        return 2
    from ..data.manifest import MANIFEST

    root = Path(a.root or cfg.get("root") or default_root)
    if a.dataset in TASKS:
        return prepare_pkg([a.dataset], root)
    entry = MANIFEST.get(a.dataset)
    steps = (entry.get if entry else "see the comments in the dataset config").replace("<root>", str(root))
    if cfg["format"] == "torchvision":
        print(f"downloading {cfg['dataset']} with torchvision into {root / cfg['dataset']} ...")
        try:
            download_torchvision(cfg["dataset"], root)
        except Exception as e:  # noqa: BLE001  (URLError, socket errors, md5 failures all mean the same here)
            print(f"apbench data prepare: download failed ({type(e).__name__}: {e}). This needs internet access; "
                  f"on an offline machine download on another one and copy the files: {steps}", file=sys.stderr)
            return 1
        print(f"done; check it with: apbench data verify {a.dataset} --root {root}")
        return 0
    print(f"{a.dataset}: no automatic download (licences and hosting vary); manual steps:\n  {steps}")
    if cfg["format"] == "vtab1k":
        folder = cfg["folder"] if isinstance(cfg["folder"], str) else cfg["folder"][0]
        print(f"  expected layout: {root}/vtab-1k/{folder}/ with train800.txt, val200.txt, train800val200.txt, "
              f"test.txt and the images they list")
    elif cfg["format"] in ("fgvc_json", "coop_split"):
        folder = cfg["folder"] if isinstance(cfg["folder"], str) else cfg["folder"][0]
        files = "train.json, val.json, test.json" if cfg["format"] == "fgvc_json" else cfg["split_file"]
        print(f"  expected layout: {root}/{folder}/ with {files} and the images "
              f"(under {cfg.get('image_dir') or 'the folder'})")
    print(f"  then check it with: apbench data verify {a.dataset} --root {root}")
    return 0


def list_cmd(a) -> int:
    from ..data.verify import available, compose_dataset, suite_members
    datasets, suites = available()
    for name in datasets:
        cfg, _ = compose_dataset(name)
        print(f"{name:<30} {cfg['format']:<14} {str(cfg.get('group', '-')):<12} {cfg.get('num_classes') or '-'}")
    for s in suites:
        print(f"suite {s}: {', '.join(suite_members(s))}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="apbench data", description=__doc__, formatter_class=OneLineHelp)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{verify,prepare,list}")
    v = sub.add_parser("verify", help="check files, counts, classes and images of a suite or dataset",
                       formatter_class=OneLineHelp, description="Check a data root against the manifest.")
    v.add_argument("target", metavar="SUITE|DATASET", help="a suite (conf/suite/) or a dataset config (conf/dataset/)")
    v.add_argument("overrides", nargs="*", metavar="dataset.KEY=VALUE",
                   help="overrides as for `apbench run`, e.g. dataset.path=/data/my_set for image_folder")
    v.add_argument("--root", metavar="DIR", help="data root (default: paths.data_root, i.e. $APBENCH_DATA or ./data)")
    v.add_argument("--quick", action="store_true", help="PIL verify() only, without decoding every image")
    v.add_argument("--checksums", action="store_true", help="also compare torchvision files with their md5")
    v.set_defaults(fn=verify_cmd)
    p = sub.add_parser("prepare", help="write the pkg tasks, download what torchvision can, say how to get the rest",
                       formatter_class=OneLineHelp, description="Get a dataset, or say how.")
    p.add_argument("dataset", metavar="DATASET", help="a dataset config (conf/dataset/), or the suite pkg (+suite=pkg)")
    p.add_argument("--root", metavar="DIR", help="data root (default: paths.data_root)")
    p.set_defaults(fn=prepare_cmd)
    sub.add_parser("list", help="dataset configs and suites", formatter_class=OneLineHelp,
                   description="List dataset configs (format, group, classes) and suites.").set_defaults(fn=list_cmd)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    return a.fn(a)
