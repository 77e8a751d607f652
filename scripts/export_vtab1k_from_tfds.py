#!/usr/bin/env python
"""Export VTAB-1k tasks from TensorFlow Datasets into the folder layout apbench reads.

    pip install tensorflow tensorflow-datasets
    python scripts/export_vtab1k_from_tfds.py --task cifar100 --out data/vtab-1k
    python scripts/export_vtab1k_from_tfds.py --task all --out data/vtab-1k

Writes ``<out>/<folder>/images/<split>/<n>.png`` and ``train800.txt``, ``val200.txt``,
``train800val200.txt``, ``test.txt`` (``images/<split>/<n>.png label`` per line), the layout of the
extracted VTAB-1k copy the field shares (folder names included: CIFAR-100 goes to ``cifar``).

The splits follow VTAB's definitions: train800 = the first 800 images of the task's training
split, val200 = the first 200 of its validation split (carved from train for tasks without one),
test = the task's test split; labels of the derived tasks (CLEVR, KITTI, dSprites, smallNORB) are
computed as VTAB computes them. Needs internet (or a filled ``--data-dir``); some TFDS sets
(diabetic_retinopathy_detection, resisc45) need a manual download into TFDS's manual folder first.
Not run on the machines this project is tested on (no TensorFlow, no internet): check an export with
``apbench data verify vtab1k`` before trusting it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _label(key):
    return lambda ex: int(ex[key])


def _bin(values, thresholds) -> int:
    """Index of the last threshold below the value (VTAB's bucketing of distances)."""
    return int(np.searchsorted(np.asarray(thresholds), float(values), side="left") - 1)


def _clevr_count(ex):
    return len(ex["objects"]["size"]) - 3  # 3..10 objects -> 8 classes


def _clevr_dist(ex):
    return _bin(np.min(ex["objects"]["pixel_coords"][:, 2]), [0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0])


def _kitti_dist(ex):
    obj = ex["objects"]
    z = np.where(obj["type"] < 3, obj["location"][:, 2], 1000.0) if len(obj["type"]) else np.array([])
    return _bin(np.min(np.concatenate([z, [1000.0]])), [-100.0, 8.0, 20.0, 999.0])  # no vehicle -> class 3


def _rescale(key, original, classes):
    return lambda ex: int(np.floor(int(ex[key]) * classes / original))


# task -> (output folder, tfds name, train800 split, val200 split, test split, label function)
TASKS = {
    "caltech101": ("caltech101", "caltech101:3.*.*", "train[:800]", "train[2754:2954]", "test", _label("label")),
    "cifar100": ("cifar", "cifar100:3.*.*", "train[:800]", "train[45000:45200]", "test", _label("label")),
    "dtd": ("dtd", "dtd:3.*.*", "train[:800]", "validation[:200]", "test", _label("label")),
    "oxford_flowers102": ("oxford_flowers102", "oxford_flowers102:2.*.*", "train[:800]", "validation[:200]", "test",
                          _label("label")),
    "oxford_iiit_pet": ("oxford_iiit_pet", "oxford_iiit_pet:3.*.*", "train[:800]", "train[2944:3144]", "test",
                        _label("label")),
    "svhn": ("svhn", "svhn_cropped:3.*.*", "train[:800]", "train[65931:66131]", "test", _label("label")),
    "sun397": ("sun397", "sun397/tfds:4.*.*", "train[:800]", "validation[:200]", "test", _label("label")),
    "patch_camelyon": ("patch_camelyon", "patch_camelyon:2.*.*", "train[:800]", "validation[:200]", "test",
                       _label("label")),
    "eurosat": ("eurosat", "eurosat/rgb:2.*.*", "train[:800]", "train[16200:16400]", "train[21600:]", _label("label")),
    "resisc45": ("resisc45", "resisc45:3.*.*", "train[:800]", "train[18900:19100]", "train[25200:]", _label("label")),
    "diabetic_retinopathy": ("diabetic_retinopathy", "diabetic_retinopathy_detection/btgraham-300:3.*.*",
                             "train[:800]", "validation[:200]", "test", _label("label")),
    "clevr_count": ("clevr_count", "clevr:3.*.*", "train[:800]", "train[63000:63200]", "validation", _clevr_count),
    "clevr_dist": ("clevr_dist", "clevr:3.*.*", "train[:800]", "train[63000:63200]", "validation", _clevr_dist),
    "dmlab": ("dmlab", "dmlab:2.0.1", "train[:800]", "validation[:200]", "test", _label("label")),
    "kitti": ("kitti", "kitti:3.*.*", "train[:800]", "validation[:200]", "test", _kitti_dist),
    "dsprites_loc": ("dsprites_loc", "dsprites:2.*.*", "train[:800]", "train[589824:590024]", "train[663552:]",
                     _rescale("label_x_position", 32, 16)),
    "dsprites_ori": ("dsprites_ori", "dsprites:2.*.*", "train[:800]", "train[589824:590024]", "train[663552:]",
                     _rescale("label_orientation", 40, 16)),
    "smallnorb_azi": ("smallnorb_azi", "smallnorb:2.*.*", "train[:800]", "test[:200]", "test[12150:]",
                      _label("label_azimuth")),
    "smallnorb_ele": ("smallnorb_ele", "smallnorb:2.*.*", "train[:800]", "test[:200]", "test[12150:]",
                      _label("label_elevation")),
}


def to_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        if img.max() <= 1:  # dSprites stores 0/1 masks
            img = img * 255
        img = np.stack([img] * 3, -1)
    return img.astype(np.uint8)


def export(task: str, out: Path, data_dir: str | None, limit: int | None) -> None:
    import tensorflow_datasets as tfds
    from PIL import Image

    folder, name, train, val, test, label = TASKS[task]
    dest = out / folder
    lines = {}
    for split, spec in (("train800", train), ("val200", val), ("test", test)):
        ds = tfds.load(name, split=spec, data_dir=data_dir, shuffle_files=False)
        (dest / "images" / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for n, ex in enumerate(tfds.as_numpy(ds)):
            if limit is not None and n >= limit:
                break
            rel = f"images/{split}/{n}.png"
            Image.fromarray(to_rgb(ex["image"])).save(dest / rel)
            rows.append(f"{rel} {label(ex)}")
        lines[split] = rows
        print(f"{task}: {split} {len(rows)} images", flush=True)
    lines["train800val200"] = lines["train800"] + lines["val200"]
    for split, rows in lines.items():
        (dest / f"{split}.txt").write_text("\n".join(rows) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}, or all")
    ap.add_argument("--out", required=True, type=Path, help="the vtab-1k folder, e.g. data/vtab-1k")
    ap.add_argument("--data-dir", help="TFDS data dir (default: TFDS's own, ~/tensorflow_datasets)")
    ap.add_argument("--limit", type=int, help="at most this many images per split (a quick trial)")
    a = ap.parse_args(argv)
    tasks = list(TASKS) if a.task == "all" else [a.task]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        print(f"unknown task {unknown[0]!r}; choose one of: {', '.join(TASKS)}, all", file=sys.stderr)
        return 2
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        print("this export needs TensorFlow Datasets: pip install tensorflow tensorflow-datasets "
              "(or download the extracted VTAB-1k release instead; see `apbench data prepare vtab1k_<task>`)",
              file=sys.stderr)
        return 2
    for t in tasks:
        export(t, a.out, a.data_dir, a.limit)
    print(f"done; check it with: apbench data verify vtab1k --root {a.out.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
