"""Loaders that decide which images a number is measured on (issue 26 item 5): Fashion-MNIST-1k (the CPU
study's data) has disjoint, class-balanced splits and `trainval` is exactly train + val; an image folder
whose split lacks a class keeps every label as in the other splits (the index in the class list)."""
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from apbench.data.fashion_mnist import DEBIAN_DIR, load_fashion_mnist
from apbench.data.image_folder import load_image_folder

from data_writers import image

NONE = {"train": None, "eval": None}  # no transforms: the raw arrays are compared


def _items(ds) -> Counter:
    """(content digest, label) of every image: a multiset, so duplicates would count."""
    return Counter((hashlib.sha1(ds.images[i].numpy().tobytes()).hexdigest(), int(ds.labels[i]))
                   for i in range(len(ds.labels)))


@pytest.fixture(scope="module")
def fmnist():
    if not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs Debian's dataset-fashion-mnist (make test installs it)")
    # The CPU study: 800 + 200 from the official train set, the whole official test set; and fmnist1k's 2,000.
    return {test_size: (load_fashion_mnist(None, NONE, 800, 200, test_size, 0, False),
                        load_fashion_mnist(None, NONE, 800, 200, test_size, 0, True)) for test_size in (None, 2000)}


@pytest.mark.parametrize("test_size, per_class_test", [(None, 1000), (2000, 200)])
def test_fmnist1k_splits_are_disjoint_by_content_and_balanced(fmnist, test_size, per_class_test):
    splits, _ = fmnist[test_size]
    train, val, test = _items(splits.train), _items(splits.val), _items(splits.test())
    digests = [{d for d, _ in s} for s in (train, val, test)]
    assert [len(d) for d in digests] == [800, 200, 10 * per_class_test]  # no image twice within a split
    assert not (digests[0] & digests[1]) and not (digests[0] & digests[2]) and not (digests[1] & digests[2])
    for split, per_class in ((train, 80), (val, 20), (test, per_class_test)):
        assert Counter(y for (_, y), n in split.items() for _ in range(n)) == {c: per_class for c in range(10)}


@pytest.mark.parametrize("test_size", [None, 2000])
def test_fmnist1k_trainval_is_train_plus_val_and_val_stays_val(fmnist, test_size):
    plain, trainval = fmnist[test_size]
    assert _items(trainval.train) == _items(plain.train) + _items(plain.val)
    assert _items(trainval.val) == _items(plain.val)
    assert _items(trainval.test()) == _items(plain.test())  # the test split does not move either


def _folder(root, layout):
    """Classes cat, dog, fox in train; val without dog, test without fox and cat's first images only."""
    keep = {"train": ("cat", "dog", "fox"), "val": ("cat", "fox"), "test": ("dog", "cat")}
    colour = {"cat": 0, "dog": 1, "fox": 2}
    lines = {s: [] for s in keep}
    for split, classes in keep.items():
        for cls in classes:
            for i in range(2):
                rel = f"{cls}/{split}{i}.png"
                image(root / (rel if layout == "lists" else f"{split}/{rel}"), colour[cls], i)
                lines[split].append(rel)
    if layout == "lists":
        for split, ls in lines.items():
            (root / f"{split}.txt").write_text("\n".join(ls) + "\n")
        return {"lists": {s: f"{s}.txt" for s in keep}}
    return {}


@pytest.mark.parametrize("layout", ["folders", "lists"])
def test_an_image_folder_split_without_a_class_keeps_every_label(tmp_path, layout):
    extra = _folder(tmp_path, layout)
    s = load_image_folder(None, NONE, path=str(tmp_path), **extra)
    assert s.class_names == ["cat", "dog", "fox"]
    by_file = lambda ds: {f"{Path(p).parent.name}/{Path(p).name}": (Path(p).parent.name, int(y))
                          for p, y in zip(ds.paths, ds.labels)}
    # Every image's label is its class's index in the class list, in every split: fox is 2 in val
    # (which has no dog), dog is 1 in test (which has no fox).
    for ds, want in ((s.train, 6), (s.val, 4), (s.test(), 4)):
        got = by_file(ds)
        assert len(got) == want and all(y == s.class_names.index(cls) for cls, y in got.values()), got
    assert sorted(by_file(s.val).values()) == [("cat", 0), ("cat", 0), ("fox", 2), ("fox", 2)]
    assert sorted(by_file(s.test()).values()) == [("cat", 0), ("cat", 0), ("dog", 1), ("dog", 1)]
