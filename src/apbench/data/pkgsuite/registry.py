"""The pkg suite's tasks as data: what each one is, where its images come from, how its labels are made,
its seed and its declared sizes. Plain declarations (no image code), so the manifest and the tests read
them without generating anything; the generators are in ``natural`` and ``structured``."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...task_groups import group_of

TRAIN, VAL = 800, 200  # VTAB-1k's sizes: train800, val200 (train800val200 is their union)
FMNIST_SOURCE = "Debian package dataset-fashion-mnist (Fashion-MNIST's original IDX files)"
FMNIST_LICENSE = "MIT (Zalando Research)"


@dataclass(frozen=True)
class Task:
    name: str            # the dataset config name (conf/dataset/<name>.yaml) and the task folder
    kind: str            # generator (generate.KINDS)
    num_classes: int
    test: int            # declared test images
    seed: int
    source: str
    license: str
    labels: str          # how a label is made, in words (the card says the same)
    params: dict = field(default_factory=dict)
    balanced_test: bool = True  # False: the test split is whatever the source leaves (digits)

    @property
    def group(self) -> str:
        return group_of(self.name)

    @property
    def sizes(self) -> dict[str, int]:
        """Split sizes as the manifest keys them."""
        return {"train": TRAIN, "val": VAL, "trainval": TRAIN + VAL, "test": self.test}


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("pkg_fashion", "fashion", 10, 1000, 2701, FMNIST_SOURCE, FMNIST_LICENSE,
         "the Fashion-MNIST class of the image (28 x 28 grey, as shipped)"),
    Task("pkg_digits", "digits", 10, 797, 2702,
         "scikit-learn (PyPI): sklearn.datasets.load_digits, the UCI optical recognition of handwritten digits "
         "test set (1,797 8 x 8 images)", "BSD-3-Clause (scikit-learn); the data: CC BY 4.0 (UCI)",
         "the digit; train and val balanced, test every image not in them", balanced_test=False),
    Task("pkg_texture", "texture", 8, 1000, 2703,
         "scikit-image (PyPI): the images bundled in skimage/data", "BSD-3-Clause (scikit-image); the images "
         "CC0 or public domain as skimage.data's docstrings state (immunohistochemistry: no known restrictions)",
         "which of 8 source images a grey crop comes from; train, val and test crops come from disjoint tiles",
         {"images": ("brick", "grass", "gravel", "cell", "camera", "coffee", "hubble_deep_field",
                     "immunohistochemistry"),
          "tile": 96, "crop": (48, 96), "out": 64, "test_tiles": 0.25, "val_tiles": 0.15}),
    Task("pkg_count", "count", 8, 1000, 2704, FMNIST_SOURCE, FMNIST_LICENSE,
         "the number of objects on the canvas, 1..8 (label = count - 1)", {"object": 14}),
    Task("pkg_xpos", "xpos", 8, 1000, 2705, FMNIST_SOURCE, FMNIST_LICENSE,
         "the horizontal position of one 20-px object: label = left * 8 // 45, its left edge (0..44) in 8 bins",
         {"object": 20}),
    Task("pkg_rotation", "rotation", 8, 1000, 2706, FMNIST_SOURCE, FMNIST_LICENSE,
         "the rotation of one object in 8 bins of 45 degrees: angle = 45 * label + U(-15, 15) degrees "
         "(counter-clockwise; a 15-degree gap between neighbouring classes)", {"object": 40, "jitter": 15.0}),
    Task("pkg_size", "size", 8, 1000, 2707, FMNIST_SOURCE, FMNIST_LICENSE,
         "the side of one object's square: label = (side - 12) // 5, sides 12..51 px", {"smallest": 12, "step": 5}),
    Task("pkg_pair_distance", "pair_distance", 5, 1000, 2708, FMNIST_SOURCE, FMNIST_LICENSE,
         "the distance between the centres of two objects: label = (distance - 16) // 8, distances 16..55 px",
         {"object": 14, "nearest": 16, "step": 8}),
)}
CANVAS = 64  # the structured tasks' canvas side in pixels
