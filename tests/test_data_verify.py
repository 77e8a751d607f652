"""`apbench data verify` / `prepare` on tiny data roots, good and deliberately broken."""
from __future__ import annotations

import urllib.error

import pytest
from omegaconf import OmegaConf

from apbench.commands import data as cli
from apbench.data.manifest import MANIFEST, Entry
from apbench.data.verify import format_table, verify_dataset
from conftest import compose
from data_writers import write_cifar, write_vtab

TINY = Entry(3, {"train": 6, "val": 3, "trainval": 9, "test": 6}, "unpack vtab-1k.zip to <root>/vtab-1k/")


def dtd_cfg(**over) -> dict:
    cfg = OmegaConf.to_container(compose("dataset=vtab1k_dtd").dataset, resolve=True)
    return cfg | {"num_classes": 3} | over


def check(root, entry=TINY, decode=True, **over):
    return verify_dataset("vtab1k_dtd", str(root), cfg=dtd_cfg(**over), entry=entry, decode=decode)


def test_good_copy_is_ok(tmp_path):
    write_vtab(tmp_path, "dtd")
    r = check(tmp_path)
    assert (r.status, r.found, r.expected, r.fix) == (
        "ok", "train 6, val 3, trainval 9, test 6, classes 3", "train 6, val 3, trainval 9, test 6, classes 3", "-")


def test_missing_file(tmp_path):
    task = write_vtab(tmp_path, "dtd")
    (task / "images/test/2_1.jpg").unlink()
    r = check(tmp_path)
    assert r.status == "missing" and r.found == "-"
    assert r.fix.startswith(f"1 of 6 images listed in {task / 'test.txt'} are missing, e.g. {task / 'images/test/2_1.jpg'}")
    assert r.fix.endswith(f"To get it: unpack vtab-1k.zip to {tmp_path}/vtab-1k/")


def test_missing_folder(tmp_path):
    r = check(tmp_path)
    assert r.status == "missing"
    assert f"none of dtd exists under {tmp_path}/vtab-1k/" in r.fix


def test_corrupted_jpeg(tmp_path):
    task = write_vtab(tmp_path, "dtd")
    bad = task / "images/val200/1_0.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    r = check(tmp_path)
    assert r.status == "broken" and r.found == "train 6, val 3, trainval 9, test 6, classes 3"
    assert r.fix.startswith(f"1 unreadable image(s), e.g. {bad} (UnidentifiedImageError")


def test_truncated_jpeg_needs_a_decode_to_be_seen(tmp_path):
    task = write_vtab(tmp_path, "dtd")
    img = task / "images/train800/0_1.jpg"
    img.write_bytes(img.read_bytes()[:-10])  # header intact, scan data cut: verify() alone passes it
    assert check(tmp_path, decode=False).status == "ok"
    r = check(tmp_path)
    assert r.status == "broken" and f"e.g. {img} (OSError: image file is truncated" in r.fix


def test_wrong_class_count(tmp_path):
    write_vtab(tmp_path, "dtd")
    r = check(tmp_path, entry=Entry(4, TINY.sizes), num_classes=4)
    assert r.status == "broken" and r.expected.endswith("classes 4") and r.found.endswith("classes 3")
    assert r.fix.startswith("3 classes found, expected 4")


def test_wrong_split_size(tmp_path):
    write_vtab(tmp_path, "dtd")
    r = check(tmp_path, entry=Entry(3, TINY.sizes | {"test": 7}))
    assert r.status == "broken" and r.fix.startswith("test has 6 images, expected 7")


def test_table_and_exit_code_through_the_cli(tmp_path, capsys):
    write_vtab(tmp_path, "dtd")  # tiny: the real manifest (800/200/1880, 47 classes) says broken
    assert cli.main(["verify", "vtab1k_dtd", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["dataset", "status", "found", "expected", "fix"]
    row = out[2]
    assert row.startswith("vtab1k_dtd  broken  train 6, val 3, trainval 9, test 6, classes 3  "
                          "train 800, val 200, trainval 1000, test 1880, classes 47  train has 6 images, expected 800")
    assert out[-1] == "0/1 ok"


def test_suite_verify_reports_every_member(tmp_path, capsys):
    assert cli.main(["verify", "fgvc", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()[2:7]] == [
        [n, "missing"] for n in ("fgvc_cub", "fgvc_nabirds", "fgvc_flowers", "fgvc_dogs", "fgvc_cars")]
    assert "0/5 ok" in out


def test_unknown_target(capsys):
    assert cli.main(["verify", "imagenet42"]) == 2
    assert "'imagenet42' is neither a suite (fgvc, paper29, pkg, vp, vtab1k) nor a dataset config" in capsys.readouterr().err


def test_checksums_flag_compares_torchvision_md5(tmp_path):
    write_cifar(tmp_path, "cifar10")
    cfg = OmegaConf.to_container(compose("dataset=cifar10").dataset, resolve=True)
    tiny = Entry(10, {"trainval": 50, "test": 10})
    assert verify_dataset("cifar10", str(tmp_path), cfg=cfg, entry=tiny).status == "ok"
    r = verify_dataset("cifar10", str(tmp_path), cfg=cfg, entry=tiny, checksums=True)
    assert r.status == "broken" and r.fix.startswith("md5 mismatch: ") and "data_batch_1" in r.fix


def test_prepare_prints_manual_steps(tmp_path, capsys):
    assert cli.main(["prepare", "vtab1k_cifar100", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"expected layout: {tmp_path}/vtab-1k/cifar/ with train800.txt" in out
    assert "scripts/export_vtab1k_from_tfds.py --task cifar100" in out


def test_prepare_download_failure_says_internet(tmp_path, capsys, monkeypatch):
    def offline(name, root):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(cli, "download_torchvision", offline)
    assert cli.main(["prepare", "svhn", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "download failed (URLError" in err and "needs internet access" in err
    assert f"train_32x32.mat and test_32x32.mat in {tmp_path}/svhn/" in err


def test_table_format():
    from apbench.data.verify import Report
    table = format_table([Report("a", "ok", "x", "x", "-"), Report("bb", "missing", "-", "yy", "get it")])
    assert table.splitlines() == ["dataset  status   found  expected  fix", "-------  -------  -----  --------  ---",
                                  "a        ok       x      x         -", "bb       missing  -      yy        get it",
                                  "1/2 ok"]


def test_manifest_matches_the_configs():
    from apbench.data.verify import available, compose_dataset
    for name in available()[0]:
        if name in ("fmnist_tiny", "image_folder"):
            continue
        assert MANIFEST[name].num_classes == compose_dataset(name)[0]["num_classes"], name


def _export_script():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).parents[1] / "scripts" / "export_vtab1k_from_tfds.py"
    spec = importlib.util.spec_from_file_location("export_vtab1k", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_export_script_covers_the_19_tasks_and_says_what_it_needs(tmp_path, capsys):
    import numpy as np
    mod = _export_script()
    assert sorted(mod.TASKS) == sorted(n.removeprefix("vtab1k_") for n in MANIFEST if n.startswith("vtab1k_"))
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        assert mod.main(["--task", "dtd", "--out", str(tmp_path)]) == 2
        assert "pip install tensorflow tensorflow-datasets" in capsys.readouterr().err
    # VTAB's derived labels
    assert mod._clevr_count({"objects": {"size": np.zeros(5)}}) == 2
    assert [mod._clevr_dist({"objects": {"pixel_coords": np.array([[0, 0, d], [0, 0, 12.0]])}})
            for d in (7.0, 8.0, 8.2, 9.7, 11.0)] == [0, 0, 1, 4, 5]
    car = lambda t, z: {"objects": {"type": np.array(t), "location": np.array([[0, 0, v] for v in z]).reshape(-1, 3)}}
    assert [mod._kitti_dist(car([0], [5.0])), mod._kitti_dist(car([2, 0], [30.0, 12.0])),
            mod._kitti_dist(car([4], [3.0])), mod._kitti_dist(car([], []))] == [0, 1, 3, 3]
    assert mod._rescale("label_orientation", 40, 16)({"label_orientation": 39}) == 15
