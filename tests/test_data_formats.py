"""Every on-disk format, written small in its real layout, loaded through the configs users run."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from apbench import data
from apbench.data import DataError, MissingData
from conftest import compose
from data_writers import (PRE, image, write_cifar, write_coop, write_fgvc, write_gtsrb, write_image_folder,
                          write_svhn, write_vtab)


def dataset_cfg(name: str, *overrides: str) -> dict:
    cfg = compose(f"dataset={name}", *[f"dataset.{o}" for o in overrides])
    return OmegaConf.to_container(cfg.dataset, resolve=True)


def load(name: str, root, *overrides: str):
    return data.build(dataset_cfg(name, "cache=none", *overrides), PRE, str(root))


def labels_of(ds) -> list[int]:
    return [ds[i][1] for i in range(len(ds))]


# --- VTAB-1k ---------------------------------------------------------------------------------

def test_vtab1k_lists_load_with_the_shared_folder_alias(tmp_path):
    write_vtab(tmp_path, "cifar")  # the shared copy calls CIFAR-100 `cifar`
    s = load("vtab1k_cifar100", tmp_path)
    assert (len(s.train), len(s.val), s.num_classes) == (6, 3, 100)
    assert labels_of(s.train) == [0, 0, 1, 1, 2, 2] and labels_of(s.val) == [0, 1, 2]
    x, _ = s.train[0]
    assert x.dtype == torch.float32 and x.shape == (3, 8, 8)
    assert s.info["sizes"] == {"train": 6, "val": 3, "trainval": 9}
    assert len(s.test()) == 6 and labels_of(s.test()) == [0, 0, 1, 1, 2, 2]


def test_vtab1k_final_runs_train_on_train800val200(tmp_path):
    task = write_vtab(tmp_path, "dtd")
    s = load("vtab1k_dtd", tmp_path, "trainval=true")
    assert len(s.train) == 9 and len(s.val) == 3
    (task / "train800val200.txt").unlink()  # rebuilt from its two parts when a copy lacks it
    assert len(load("vtab1k_dtd", tmp_path, "trainval=true").train) == 9


def test_vtab1k_test_split_is_opened_only_on_demand(tmp_path):
    task = write_vtab(tmp_path, "dtd")
    (task / "test.txt").unlink()
    s = load("vtab1k_dtd", tmp_path)  # training can be set up without the test list
    with pytest.raises(MissingData, match=r"vtab-1k/dtd/test.txt is missing"):
        s.test()


@pytest.mark.parametrize("breakage, error, message", [
    ("missing_image", MissingData, r"1 of 6 images listed in .*train800.txt are missing, e.g. .*0_0.jpg"),
    ("bad_line", DataError, r"train800.txt:1: expected 'relative/path label'"),
    ("label_range", DataError, r"train800.txt: label 9 found but the dataset has 3 classes"),
    ("empty", DataError, r"empty split: .*train800.txt lists no images"),
    ("no_folder", MissingData, r"VTAB-1k task folder not found: none of dtd exists under .*vtab-1k/"),
    # a path that climbs out through a folder it first enters: only the normalised path shows it
    ("traversal", DataError, r"train800.txt:1: 'images/../../secret.jpg' is outside the task folder"),
])
def test_vtab1k_errors_name_the_file(tmp_path, breakage, error, message):
    task = write_vtab(tmp_path, "dtd")
    lst = task / "train800.txt"
    if breakage == "missing_image":
        (task / "images/train800/0_0.jpg").unlink()
    elif breakage == "bad_line":
        lst.write_text("images/train800/0_0.jpg\n")
    elif breakage == "label_range":
        lst.write_text("images/train800/0_0.jpg 9\n")
    elif breakage == "empty":
        lst.write_text("\n")
    elif breakage == "traversal":
        (task.parent / "secret.jpg").write_bytes((task / "images/train800/0_0.jpg").read_bytes())
        lst.write_text("images/../../secret.jpg 0\n")
    else:
        (task.parent / "dtd").rename(task.parent / "elsewhere")
    with pytest.raises(error, match=message):
        load("vtab1k_dtd", tmp_path, "num_classes=3")


def test_unreadable_image_names_the_file_when_read(tmp_path):
    """A header PIL reads but truncated pixels: only decoding finds it (the cheap check before
    training reads headers; `apbench data verify` decodes everything)."""
    task = write_vtab(tmp_path, "dtd")
    jpeg = task / "images/train800/1_0.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:-10])  # the end of the scan data cut off
    s = load("vtab1k_dtd", tmp_path)
    with pytest.raises(DataError, match=r"1_0.jpg: unreadable image"):
        s.train[2]


# --- FGVC (VPT JSON) -------------------------------------------------------------------------

def test_fgvc_json_maps_one_based_labels_and_names_classes_by_folder(tmp_path):
    write_fgvc(tmp_path, "CUB_200_2011")
    s = load("fgvc_cub", tmp_path, "num_classes=3")
    assert (len(s.train), len(s.val), len(s.test()), s.num_classes) == (6, 3, 6, 3)
    assert sorted(labels_of(s.train)) == [0, 0, 1, 1, 2, 2]
    assert s.class_names == ["001.Bird_0", "002.Bird_1", "003.Bird_2"]
    assert s.info["images"].endswith("CUB_200_2011/images")
    assert len(load("fgvc_cub", tmp_path, "num_classes=3", "trainval=true").train) == 9


def test_fgvc_json_finds_images_in_the_dataset_folder_itself(tmp_path):
    write_fgvc(tmp_path, "OxfordFlower", image_dir="")  # Flowers / Cars keep paths relative to the folder
    s = load("fgvc_flowers", tmp_path, "num_classes=3")
    assert len(s.train) == 6 and s.info["images"].endswith("OxfordFlower")


def test_fgvc_json_class_count_mismatch(tmp_path):
    write_fgvc(tmp_path, "Stanford-dogs", image_dir="Images")
    with pytest.raises(DataError, match=r"train.json \+ val.json have 3 distinct labels, the dataset has 120"):
        load("fgvc_dogs", tmp_path)


# --- CoOp splits -----------------------------------------------------------------------------

def test_coop_split_loads_with_class_names(tmp_path):
    write_coop(tmp_path, "food-101", "images", "split_zhou_Food101.json")
    s = load("food101", tmp_path, "num_classes=3")
    assert (len(s.train), len(s.val), len(s.test())) == (6, 3, 6)
    assert s.class_names == ["class 0", "class 1", "class 2"]
    assert labels_of(s.val) == [0, 1, 2]
    assert len(load("food101", tmp_path, "num_classes=3", "trainval=true").train) == 9


def test_coop_split_eurosat_image_dir_and_wrong_count(tmp_path):
    write_coop(tmp_path, "eurosat", "2750", "split_zhou_EuroSAT.json")
    assert len(load("eurosat", tmp_path, "num_classes=3").train) == 6
    with pytest.raises(DataError, match=r"split_zhou_EuroSAT.json has 3 classes, the dataset has 10"):
        load("eurosat", tmp_path)


def test_coop_split_file_missing(tmp_path):
    write_coop(tmp_path, "dtd", "images", "other.json")
    with pytest.raises(MissingData, match=r"dtd/split_zhou_DescribableTextures.json is missing"):
        load("dtd", tmp_path)


# --- torchvision sets ------------------------------------------------------------------------

def test_cifar10_pickle_batches(tmp_path):
    write_cifar(tmp_path, "cifar10")
    s = load("cifar10", tmp_path, "val_fraction=0.2")
    assert (len(s.train), len(s.val), len(s.test()), s.num_classes) == (40, 10, 10, 10)
    assert s.class_names[:2] == ["class0", "class1"]
    # pixel layout: the first row of data_batch_1 is channel-major (R plane, G plane, B plane)
    from data_writers import cifar_arrays
    rows, labels = cifar_arrays(10, 10, 0)
    full = data.LOADERS["torchvision"](str(tmp_path), {"train": None, "eval": None}, "cifar10", trainval=True)
    assert torch.equal(full.train.raw(0), torch.from_numpy(rows[0].reshape(3, 32, 32)))
    assert int(full.train.labels[0]) == labels[0]
    # the carved val is fixed by split_seed, not by anything else
    again = load("cifar10", tmp_path, "val_fraction=0.2")
    assert np.array_equal(again.val.labels, s.val.labels)
    assert len(load("cifar10", tmp_path, "val_fraction=0.2", "trainval=true").train) == 50


def test_cifar100_pickle_files(tmp_path):
    write_cifar(tmp_path, "cifar100")
    s = load("cifar100", tmp_path)
    assert (len(s.train) + len(s.val), len(s.test()), s.num_classes) == (200, 100, 100)
    assert s.class_names[99] == "class99"


def test_svhn_mat_maps_label_10_to_digit_0(tmp_path):
    from scipy.io import loadmat
    write_svhn(tmp_path)
    s = load("svhn", tmp_path, "trainval=true")
    assert (len(s.train), len(s.test()), s.num_classes) == (20, 10, 10)
    assert list(s.train.labels[:11]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    X = loadmat(tmp_path / "svhn" / "train_32x32.mat")["X"]
    assert torch.equal(s.train.raw(3), torch.from_numpy(X[..., 3]).permute(2, 0, 1))


def test_gtsrb_folders_and_csv(tmp_path):
    write_gtsrb(tmp_path)
    s = load("gtsrb", tmp_path, "num_classes=3", "trainval=true")
    assert (len(s.train), len(s.test()), s.num_classes) == (6, 6, 3)
    assert sorted(s.train.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert s.test().labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert s.class_names == ["00000", "00001", "00002"]


def test_torchvision_sets_never_download(tmp_path):
    with pytest.raises(MissingData, match=r"cifar10 not found: .*run `apbench data prepare cifar10"):
        load("cifar10", tmp_path)


def test_truncated_cifar_batch_is_broken_not_missing(tmp_path):
    d = write_cifar(tmp_path, "cifar10")
    (d / "data_batch_3").write_bytes((d / "data_batch_3").read_bytes()[:100])
    with pytest.raises(DataError, match=r"unreadable .*prepare cifar10"):
        load("cifar10", tmp_path)


# --- image folder ----------------------------------------------------------------------------

def test_image_folder_with_split_folders(tmp_path):
    write_image_folder(tmp_path, "mine")
    s = load("image_folder", tmp_path, "path=mine", "num_classes=3")
    assert s.class_names == ["cat", "dog", "owl"]
    assert (len(s.train), len(s.val), len(s.test())) == (6, 6, 6)
    assert not s.info["val_carved"]


def test_image_folder_carves_val_when_absent(tmp_path):
    write_image_folder(tmp_path, "mine", splits=("train", "test"), per_class=4)
    s = load("image_folder", tmp_path, "path=mine", "val_fraction=0.25")
    assert (len(s.train), len(s.val)) == (9, 3) and s.info["val_carved"]


def test_image_folder_with_list_files(tmp_path):
    base = tmp_path / "flat"
    for c, cls in enumerate(("a", "b")):
        for i in range(3):
            image(base / cls / f"{i}.jpg", c, i)
    (base / "train.txt").write_text("a/0.jpg\na/1.jpg\nb/0.jpg\nb/1.jpg\n")
    (base / "val.txt").write_text("a/2.jpg\n")
    (base / "test.txt").write_text("b/2.jpg 1\n")
    s = load("image_folder", tmp_path, "path=flat", "lists={train: train.txt, val: val.txt, test: test.txt}")
    assert s.class_names == ["a", "b"]
    assert labels_of(s.train) == [0, 0, 1, 1] and labels_of(s.val) == [0] and labels_of(s.test()) == [1]


def test_image_folder_errors(tmp_path):
    base = write_image_folder(tmp_path, "mine")
    image(base / "test" / "emu" / "0.png", 0)
    with pytest.raises(DataError, match=r"mine/test has class folders that train does not: \['emu'\]"):
        load("image_folder", tmp_path, "path=mine").test()
    with pytest.raises(DataError, match=r"3 class folders, dataset.num_classes is 5"):
        load("image_folder", tmp_path, "path=mine", "num_classes=5")
    with pytest.raises(MissingData, match=r"nothere does not exist"):
        load("image_folder", tmp_path, "path=nothere")


def test_build_checks_num_classes_for_every_loader(tmp_path):
    write_gtsrb(tmp_path)
    with pytest.raises(DataError, match=r"dataset.num_classes is 43 but the data found has 3 classes"):
        load("gtsrb", tmp_path)


@pytest.mark.parametrize("rel, leaves", [
    ("cat/1.png", False), ("cat/../dog/1.png", False), ("./cat/1.png", False), ("..cat/1.png", False),
    ("../secret.png", True), ("..", True), ("cat/../../secret.png", True), ("./../secret.png", True),
    ("a/b/../../../secret.png", True), ("/etc/passwd", True),
])
def test_a_split_list_path_outside_the_dataset_folder_is_told_apart(rel, leaves):
    """The one rule every list loader (image folder, VTAB-1k, CoOp, FGVC json) applies to its paths."""
    from apbench.data.images import outside
    assert outside(rel) is leaves
