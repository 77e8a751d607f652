"""A user's image folder through the tools around a run (issue 16, item 13): `apbench data verify`
takes its path, `apbench plan` counts its images, and a missing folder names `dataset.path`."""
from __future__ import annotations

import pytest

from apbench import data, sweep
from apbench.cli import main
from apbench.data import MissingData
from conftest import CONF
from data_writers import PRE, write_image_folder


def test_data_verify_is_given_the_folder(tmp_path, capsys):
    base = write_image_folder(tmp_path, "pets", classes=("cat", "dog", "owl"), per_class=2)
    assert main(["data", "verify", "image_folder", f"dataset.path={base}"]) == 0
    out = capsys.readouterr().out
    assert "image_folder  ok      train 6, val 6, trainval 12, test 6, classes 3" in out
    (base / "train" / "owl" / "1.png").write_bytes(b"")  # now one image is broken
    assert main(["data", "verify", "image_folder", f"dataset.path={base}"]) == 1
    assert "broken" in capsys.readouterr().out


def test_data_verify_refuses_a_misspelt_override(tmp_path, capsys):
    assert main(["data", "verify", "image_folder", "dataset.pth=/data"]) == 2
    assert "did you mean dataset.path?" in capsys.readouterr().err


def test_plan_counts_the_images_of_an_image_folder(tmp_path):
    # 3 classes x 8 train images, no val folder: val carved, round(24 * 0.1) = 2, train 22
    base = write_image_folder(tmp_path, "mine", splits=("train", "test"), per_class=8)
    [job] = sweep.sweep_jobs(["dataset=image_folder", f"dataset.path={base}", "model=tiny_resnet"], str(CONF))
    assert (job.train_images, job.eval_images) == ([22], [2])
    [job] = sweep.sweep_jobs(["dataset=image_folder", f"dataset.path={base}", "dataset.trainval=true",
                             "model=tiny_resnet"], str(CONF))
    assert (job.train_images, job.eval_images) == ([24], [0])


def test_a_missing_image_folder_names_dataset_path(tmp_path):
    with pytest.raises(MissingData, match=r"mine does not exist \(dataset.path=mine under the data root .*\); "
                                          r"set dataset.path to your image folder"):
        data.build({"format": "image_folder", "path": "mine"}, PRE, str(tmp_path))
    with pytest.raises(MissingData, match=r"dataset.path=mine is relative and no data root is set"):
        data.build({"format": "image_folder", "path": "mine"}, PRE, None)
