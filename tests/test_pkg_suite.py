"""The pkg suite (issue 27): deterministic, balanced, leak-free generation in the VTAB-1k layout, labels
that agree with the generator's metadata, verify/prepare, the tables of a multi-task folder, and the
suite end to end on tiny_resnet. Generation is tested on a small copy (the generators take sizes); the
declared sizes are checked on the draws (labels and layouts, no pixels) and the manifest."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from apbench.data.manifest import MANIFEST
from apbench.data.pkgsuite import TASKS
from apbench.data.pkgsuite.cues import majority_accuracy, mean_var_accuracy, task_cues
from apbench.data.pkgsuite.sources import Sources, digest
from apbench.data.pkgsuite.write import declared_sizes, draw, files_digest, prepare, render, task_folder
from apbench.data.verify import suite_members, verify_dataset
from apbench.task_groups import SUITE_GROUPS
from conftest import CONF, compose
from data_writers import PRE

SMALL = {"train": 40, "val": 40, "test": 40}  # a multiple of 10, 8 and 5: balanced for every task
FOLDER = {"train": "train800", "val": "val200", "test": "test"}
SRC_DIR = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="session")
def src():
    return Sources()


@pytest.fixture(scope="session")
def small(tmp_path_factory, src):
    root = tmp_path_factory.mktemp("pkg")
    for name in TASKS:
        prepare(name, root, SMALL, src)
    return root


@pytest.fixture(scope="session")
def declared(src):
    """{task: {split: metadata list}} at the declared sizes (no pixels rendered)."""
    return {name: draw(task, declared_sizes(task), src) for name, task in TASKS.items()}


def listed(folder: Path, split: str) -> list[tuple[str, int]]:
    lines = (folder / f"{split}.txt").read_text().splitlines()
    return [(p, int(lab)) for p, lab in (line.rsplit(" ", 1) for line in lines)]


def metas(folder: Path) -> dict[str, dict]:
    return {m["path"]: m for m in map(json.loads, (folder / "meta.jsonl").read_text().splitlines())}


def file_digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ what the suite is

def test_eight_tasks_in_two_groups_none_named_after_a_vtab_task():
    groups = SUITE_GROUPS["pkg"][1]
    assert {g: len(t) for g, t in groups.items()} == {"natural": 3, "structured": 5}
    assert list(TASKS) == [f"pkg_{t}" for g in groups.values() for t in g] == suite_members("pkg")
    vtab = {t for g in SUITE_GROUPS["vtab1k"][1].values() for t in g}
    words = {w for t in vtab for w in t.split("_")} - {"count", "loc", "ori", "dist"}  # clevr, dsprites, ...
    for name, task in TASKS.items():
        assert name.removeprefix("pkg_") not in vtab and not set(name.split("_")) & words, name
        cfg = compose(f"dataset={name}").dataset
        assert (cfg.format, cfg.protocol, cfg.group, cfg.num_classes, list(cfg.folder)) == (
            "vtab1k", "vtab1k", task.group, task.num_classes, [name])
    assert sorted(p.stem for p in (CONF / "dataset").glob("pkg_*.yaml")) == sorted(TASKS)


def test_manifest_declares_vtab1k_sizes_and_balanced_classes():
    for name, task in TASKS.items():
        entry = MANIFEST[name]
        assert entry.num_classes == task.num_classes
        assert entry.sizes == {"train": 800, "val": 200, "trainval": 1000, "test": 797 if name == "pkg_digits" else 1000}
        k = task.num_classes
        assert entry.per_class == ({"train": 80, "val": 20} if name == "pkg_digits" else
                                   {"train": 800 // k, "val": 200 // k, "test": 1000 // k})


def test_declared_splits_are_balanced(declared):
    for name, task in TASKS.items():
        for split, per_class in MANIFEST[name].per_class.items():
            counts = np.bincount([m["label"] for m in declared[name][split]], minlength=task.num_classes)
            assert counts.tolist() == [per_class] * task.num_classes, (name, split)
    # sklearn's digits: 178, 182, 177, 183, 181, 182, 181, 179, 174, 180 images of 0..9; 100 of each in train+val
    test = np.bincount([m["label"] for m in declared["pkg_digits"]["test"]])
    assert test.tolist() == [78, 82, 77, 83, 81, 82, 81, 79, 74, 80]


def test_small_copy_manifest_counts_what_the_lists_say(small):
    for name, task in TASKS.items():
        folder = task_folder(small, name)
        m = json.loads((folder / "manifest.json").read_text())
        for split in ("train800", "val200", "test"):
            labels = [lab for _, lab in listed(folder, split)]
            assert m["class_counts"][split] == np.bincount(labels, minlength=task.num_classes).tolist()
            assert m["class_counts"][split] == [40 // task.num_classes] * task.num_classes
        assert listed(folder, "train800val200") == listed(folder, "train800") + listed(folder, "val200")
        assert m["digest"] == files_digest(folder)


# ------------------------------------------------------------------ deterministic

def test_generation_is_deterministic_across_processes(small, tmp_path):
    """A fresh interpreter (its own hash seed) writes the same bytes, file by file."""
    code = ("from apbench.data.pkgsuite.write import prepare; from apbench.data.pkgsuite.sources import Sources; "
            f"src = Sources(); [prepare(n, {str(tmp_path)!r}, {SMALL!r}, src) for n in {list(TASKS)!r}]")
    env = os.environ | {"PYTHONHASHSEED": "12345", "PYTHONPATH": str(SRC_DIR)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in TASKS:
        a, b = file_digests(task_folder(small, name)), file_digests(task_folder(tmp_path, name))
        assert len(a) == 3 * 40 + 6 and a == b, name  # 120 images, 4 lists, meta.jsonl, manifest.json


def test_a_copy_written_later_gives_runs_the_same_data_digest(small, src, tmp_path):
    """A run's data digest reads each image's name, size and mtime: a copy written later (a fresh clone, a
    new session) must list the same, or every committed record of a study reads as made from other inputs
    and is trained again."""
    from apbench import data
    from apbench.identity import data_digests
    prepare("pkg_size", tmp_path, SMALL, src)
    cfg = OmegaConf.to_container(compose("dataset=pkg_size").dataset, resolve=True)
    a, b = (data.build(cfg, PRE, str(root)) for root in (small, tmp_path))
    assert data_digests(a.train, a.val, a.test()) == data_digests(b.train, b.val, b.test())


def test_another_seed_gives_other_bytes(small, src, tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, "pkg_count", dataclasses.replace(TASKS["pkg_count"], seed=1))
    prepare("pkg_count", tmp_path, SMALL, src)
    assert files_digest(task_folder(tmp_path, "pkg_count")) != files_digest(task_folder(small, "pkg_count"))


# ------------------------------------------------------------------ no test image in train or val

def test_no_fashion_mnist_test_image_reaches_train_or_val(declared, small, src):
    """By content digest: every object of a train/val image is an official-train image whose pixels are
    no test image's; the digest in the metadata is that of the pixels it names."""
    train_images, test_images = src.fmnist["train"][0], src.fmnist["test"][0]
    test_digests = {digest(im) for im in test_images}
    seen = 0
    for name in TASKS:
        for split, items in declared[name].items():
            for m in items:
                for obj in m.get("objects", []):
                    pixels = (train_images if obj["split"] == "train" else test_images)[obj["index"]]
                    assert obj["digest"] == digest(pixels)
                    assert obj["split"] == ("test" if split == "test" else "train")
                    assert (obj["digest"] in test_digests) == (split == "test"), (name, split, obj)
                    seen += 1
    assert seen == 2000 + 3 * 2000 + 2 * 2000 + 2000 * 9 // 2  # fashion, xpos/rotation/size, pair, count (mean 4.5)
    # pkg_fashion's files themselves: the decoded pixels of a train/val image are no test image
    folder = task_folder(small, "pkg_fashion")
    for split in ("train800", "val200"):
        for path, _ in listed(folder, split):
            assert digest(np.asarray(Image.open(folder / path))) not in test_digests


def test_train_pool_drops_a_train_image_that_duplicates_a_test_image(src):
    train, test = src.fmnist["train"], src.fmnist["test"]
    fake = Sources()
    images = train[0][:50].copy()
    images[7] = test[0][3]  # the same picture in both official splits
    fake.__dict__["fmnist"] = {"train": (images, train[1][:50]), "test": test}
    pooled = np.concatenate([fake.pools["train"][1], fake.pools["val"][1]])
    assert sorted(pooled.tolist()) == [i for i in range(50) if i != 7]
    assert not set(fake.pools["train"][1]) & set(fake.pools["val"][1])


def test_texture_splits_come_from_disjoint_tiles(declared):
    tile = TASKS["pkg_texture"].params["tile"]
    used = {}
    for split, items in declared["pkg_texture"].items():
        for m in items:
            r, c = m["tile"]
            top, left, size = m["box"]
            assert r * tile <= top and top + size <= (r + 1) * tile and c * tile <= left and left + size <= (c + 1) * tile
            used.setdefault((m["image"], r, c), set()).add(split)
    assert all(len(splits) == 1 for splits in used.values())


# ------------------------------------------------------------------ labels and metadata

def overlapping(a, b):
    return not (a["top"] + a["size"] <= b["top"] or b["top"] + b["size"] <= a["top"]
                or a["left"] + a["size"] <= b["left"] or b["left"] + b["size"] <= a["left"])


def expected_label(name: str, m: dict, src) -> int:
    """Each task's label from its metadata, by the rule its card states (written out here, not imported)."""
    objs = m.get("objects", [])
    if name == "pkg_fashion":
        return int(src.fmnist[objs[0]["split"]][1][objs[0]["index"]])
    if name == "pkg_digits":
        return int(src.digits[1][m["index"]])
    if name == "pkg_texture":
        return TASKS[name].params["images"].index(m["image"])
    if name == "pkg_count":
        assert not any(overlapping(a, b) for i, a in enumerate(objs) for b in objs[i + 1:])
        return len(objs) - 1
    (o, *rest) = objs
    assert all(0 <= v["top"] and v["top"] + v["size"] <= 64 and 0 <= v["left"] and v["left"] + v["size"] <= 64
               for v in objs)
    if name == "pkg_xpos":
        assert o["size"] == 20
        return o["left"] * 8 // 45  # 45 left edges, 0..44
    if name == "pkg_rotation":
        label = round(o["angle"] / 45) % 8
        assert abs(o["angle"] - 45 * round(o["angle"] / 45)) <= 15
        return label
    if name == "pkg_size":
        assert 12 <= o["size"] <= 51
        return (o["size"] - 12) // 5
    if name == "pkg_pair_distance":
        b = rest[0]
        assert not overlapping(o, b)
        d = math.hypot(o["top"] - b["top"], o["left"] - b["left"])  # equal sizes: centres differ as corners do
        return int((d - 16) // 8)
    raise AssertionError(name)


def test_every_label_agrees_with_the_metadata(declared, src):
    for name in TASKS:
        for items in declared[name].values():
            assert all(m["label"] == expected_label(name, m, src) for m in items), name


def test_written_lists_metadata_and_pixels_agree(small, src):
    """List labels = metadata labels, and every PNG is exactly what its metadata renders to."""
    for name, task in TASKS.items():
        folder = task_folder(small, name)
        meta = metas(folder)
        for split in ("train800", "val200", "test"):
            for path, label in listed(folder, split):
                m = meta[path]
                assert (m["split"], m["label"]) == (split, label)
                assert label == expected_label(name, m, src)
                assert np.array_equal(np.asarray(Image.open(folder / path)), render(task, m, src)), path


def test_a_positive_angle_turns_an_object_counter_clockwise(src):
    """A bar along the top of a 28 x 28 source, turned by +90 degrees, lies along the left of its square."""
    from apbench.data.pkgsuite.canvas import compose
    fake = Sources()
    bar = np.zeros((1, 28, 28), np.uint8)
    bar[0, :4, :] = 255
    fake.__dict__["fmnist"] = {"train": (bar, np.zeros(1, np.int64)), "test": (bar, np.zeros(1, np.int64))}
    turned = compose(fake, [{"split": "train", "index": 0, "top": 0, "left": 0, "size": 40, "angle": 90.0}])[:40, :40]
    rows, cols = np.nonzero(turned > 128)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (6, 9, 6, 33)  # the square holds the source at 6..33


# ------------------------------------------------------------------ prepare and verify

def test_prepare_writes_the_declared_sizes_and_verify_passes(tmp_path, capsys):
    from apbench.cli import main
    assert main(["data", "prepare", "pkg_xpos", "--root", str(tmp_path)]) == 0
    assert main(["data", "verify", "pkg_xpos", "--root", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "pkg_xpos  ok      train 800, val 200, trainval 1000, test 1000, classes 8" in out
    folder = task_folder(tmp_path, "pkg_xpos")
    assert sorted(p.name for p in tmp_path.joinpath("vtab-1k").iterdir()) == ["pkg_xpos"]  # nothing half-written
    assert [len(listed(folder, s)) for s in ("train800", "val200", "train800val200", "test")] == [800, 200, 1000, 1000]


def test_verify_names_a_small_copy_and_an_unbalanced_split(small, tmp_path):
    r = verify_dataset("pkg_size", str(small))
    assert r.status == "broken" and r.fix.startswith("train has 40 images, expected 800; val has 40 images, expected 200")
    import shutil
    shutil.copytree(task_folder(small, "pkg_size"), task_folder(tmp_path, "pkg_size"))
    cfg = OmegaConf.to_container(compose("dataset=pkg_size").dataset, resolve=True)
    entry = dataclasses.replace(MANIFEST["pkg_size"], sizes={}, per_class={"train": 5, "val": 5, "test": 5})
    assert verify_dataset("pkg_size", str(tmp_path), cfg=cfg, entry=entry).status == "ok"
    lists = task_folder(tmp_path, "pkg_size") / "train800.txt"
    lines = lists.read_text().splitlines()
    lines[0] = lines[0].rsplit(" ", 1)[0] + f" {(int(lines[0].rsplit(' ', 1)[1]) + 1) % 8}"
    lists.write_text("\n".join(lines) + "\n")
    r = verify_dataset("pkg_size", str(tmp_path), cfg=cfg, entry=entry)
    assert r.status == "broken" and r.fix.startswith("train is not balanced as declared (5 images per class)")


def test_a_failed_prepare_leaves_the_old_copy_and_no_partial_folder(small, src, tmp_path, monkeypatch):
    from apbench.data.pkgsuite import write
    prepare("pkg_size", tmp_path, SMALL, src)
    before = file_digests(task_folder(tmp_path, "pkg_size"))
    calls = []

    def broken(task, meta, s):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("disk full")
        return render(task, meta, s)
    monkeypatch.setattr(write, "render", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare("pkg_size", tmp_path, {"train": 80}, src)
    assert sorted(p.name for p in tmp_path.joinpath("vtab-1k").iterdir()) == ["pkg_size"]
    assert file_digests(task_folder(tmp_path, "pkg_size")) == before


# ------------------------------------------------------------------ the trivial cues

def test_cues_closed_forms(small, tmp_path):
    assert majority_accuracy([0, 1, 1, 2], [1, 1, 0, 2]) == 50.0
    assert majority_accuracy([2, 0, 0, 2], [0, 2, 2, 2]) == 25.0  # a tie goes to the smaller label
    x = np.array([[0.1, 0.0], [0.2, 0.0], [0.8, 0.0], [0.9, 0.0]])
    assert mean_var_accuracy(x, [0, 0, 1, 1], x[::-1], [1, 1, 0, 0]) == 100.0
    c = task_cues(task_folder(small, "pkg_count"))
    assert (c["classes"], c["chance"], c["majority"], c["n_fit"], c["n_test"]) == (8, 12.5, 12.5, 80, 40)


# ------------------------------------------------------------------ tables of a multi-task folder

def record(dataset, method, seed, acc, trainable=10, edge=()):
    group = TASKS[dataset].group
    return {"schema": 1, "run_id": f"{dataset}-{method}-{seed}", "status": "ok", "dataset": dataset,
            "dataset_group": group, "protocol": "vtab1k", "stage": "final", "model": "m", "method": method,
            "head": "linear", "layers": [], "seed": seed, "hparams": {"lr": 0.01, "edge_flags": list(edge)},
            "metrics": {"val_top1": acc, "test_top1": acc, "n_test": 1000},
            "params": {"total": 100, "trainable": trainable, "trainable_no_head": 0}, "efficiency": {},
            "error": None, "finished_at": "2025-01-01T00:00:00Z"}


def test_paper_table_group_means_friedman_and_cd_diagram(tmp_path):
    """8 tasks x 3 methods: a = 50 + i on task i, b = a + 10 (seeds 40 + i, 60 + i on one task), c = a - 5."""
    from apbench.results.frame import load_records
    from apbench.results.store import write_record
    from apbench.results.tables import write_tables
    recs = []
    for i, name in enumerate(TASKS):
        recs.append(record(name, "a", 0, 50.0 + i, trainable=10 + i, edge=["lr"] if i == 0 else ()))
        recs.append(record(name, "c", 0, 45.0 + i, trainable=30))
        seeds = [(0, 60.0 + i)] if i else [(0, 40.0 + i), (1, 80.0 + i)]
        recs += [record(name, "b", s, v, trainable=20) for s, v in seeds]
    for r in recs:
        write_record(tmp_path / "runs" / r["run_id"] / "record.json", r)
    out = tmp_path / "out"
    write_tables(load_records(tmp_path / "runs")[0], out, reference="a")  # what `apbench results` writes, less plots
    paper = (out / "paper-m-vtab1k.csv").read_text().splitlines()
    assert paper[0] == ("method," + ",".join(TASKS) + ",mean: natural,mean: structured,mean of groups,"
                        "mean over datasets,trainable params (mean over tasks)")
    # a: natural 50, 51, 52 -> 51; structured 53..57 -> 55; groups (51 + 55) / 2 = 53; tasks 53.5
    assert paper[1] == "a,50.00\N{DAGGER},51.00,52.00,53.00,54.00,55.00,56.00,57.00,51.00,55.00,53.00,53.50,14"
    assert paper[2] == "b,60.00,61.00,62.00,63.00,64.00,65.00,66.00,67.00,61.00,65.00,63.00,63.50,20"
    assert paper[3] == "c,45.00,46.00,47.00,48.00,49.00,50.00,51.00,52.00,46.00,50.00,48.00,48.50,30"
    acc = (out / "accuracy-m-vtab1k.csv").read_text()
    assert "mean: natural" in acc and "mean: specialized" not in acc
    # ranks b 1, a 2, c 3 on every task: chi2 = 12 N / (k (k + 1)) * sum R^2 - 3 N (k + 1) = 16 (N = 8, k = 3)
    friedman = (out / "friedman-m-vtab1k.csv").read_text().splitlines()
    # p = exp(-16 / 2) for 2 degrees of freedom; CD = q_0.05(3) 2.343 * sqrt(3 * 4 / (6 * 8)) (Demsar's table)
    assert friedman[1] == "8,3,16.0,0.00034,1.172"
    assert (out / "cd-m-vtab1k.png").stat().st_size > 1000
    ranks = (out / "ranks-m-vtab1k.csv").read_text().splitlines()
    assert ranks[1:] == ["a,8,2.0,0/8/0,+0.00,(reference)", "b,8,1.0,8/0/0,+10.00,0.0078", "c,8,3.0,0/0/8,-5.00,0.0078"]
    stats = (out / "stats-m-vtab1k.csv").read_text()
    assert stats.count("+10.00") == 8 and stats.count("-5.00") == 8


def test_ap_with_its_layer_chosen_on_val_is_one_column_and_its_depths_a_table(tmp_path):
    """AP's selection chose block 16 on the natural tasks and block 4 on the structured ones: one column
    `ap` in the paper table, the chosen points per task and per group in depth-*; a layer sweep
    (method.layers not searched) keeps its `ap@k` columns."""
    from apbench.results.chosen_depth import depth_tables
    from apbench.results.frame import load_records
    from apbench.results.paper_table import paper_tables
    from apbench.results.store import write_record
    space = {"lr": [0.01, 0.1], "method.layers": [["4"], ["16"]]}
    for i, name in enumerate(TASKS):
        point = "16" if TASKS[name].group == "natural" else "4"
        r = record(name, "ap", 0, 60.0 + i) | {"layers": [point], "config": {
            "dataset": {"name": name}, "method": {"name": "ap", "layers": [point]}, "trainer": {"lr": 0.01}}}
        r["hparams"]["selected_from"] = {"space": space, "rule": "grid", "chosen": {"method.layers": [point]}}
        write_record(tmp_path / r["run_id"] / "record.json", r)
        at = "8" if i % 2 else "12"
        sweep = record(name, "ap", 0, 50.0) | {"layers": [at], "run_id": f"{name}-sweep", "config": {
            "dataset": {"name": name}, "method": {"name": "ap", "layers": [at]}, "trainer": {"lr": 0.01}}}
        write_record(tmp_path / sweep["run_id"] / "record.json", sweep)
    df, _ = load_records(tmp_path)
    [paper] = paper_tables(df).values()
    assert list(paper.index) == ["ap", "ap@8", "ap@12"]
    assert paper.loc["ap", "mean: natural"] == "61.00" and paper.loc["ap", "mean: structured"] == "65.00"
    [depth] = depth_tables(df).values()
    assert depth["ap"].tolist() == ["16", "16", "16", "4", "4", "4", "4", "4", "16, 16, 16", "4, 4, 4, 4, 4"]
    assert list(depth.index[-2:]) == ["group: natural", "group: structured"] and list(depth.columns) == ["group", "ap"]


# ------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_suite_runs_end_to_end_on_tiny_resnet(small, tmp_path, capsys):
    cmd = [sys.executable, "-m", "apbench", "run", "-m", "+suite=pkg", "model=tiny_resnet", "trainer=fast",
           "device=cpu", "method=linear_probe", "trainer.measure_efficiency=false",
           f"paths.root_dir={tmp_path}", f"paths.data_root={small}"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env=os.environ | {"PYTHONPATH": str(SRC_DIR)})
    assert r.returncode == 0, r.stderr[-3000:]
    recs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/record.json")]
    assert sorted(x["dataset"] for x in recs) == sorted(TASKS)
    for x in recs:
        task = TASKS[x["dataset"]]
        assert (x["status"], x["model_config"], x["dataset_group"], x["num_classes"]) == (
            "ok", "tiny_resnet", task.group, task.num_classes)
        assert x["hparams"]["epochs"] == 1 and x["metrics"]["test_top1"] is not None
        assert x["data"]["source"] == str(task_folder(small, x["dataset"]))  # through the vtab1k loader
        assert x["data"]["sizes"] == {"train": 40, "val": 40, "trainval": 80}
    from apbench.cli import main
    assert main(["results", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "paper-style table (test top-1 %, mean over seeds): tiny_resnet, fixed" in printed
    header = (tmp_path / "report" / "paper-tiny_resnet-fixed.csv").read_text().splitlines()[0]
    assert header.startswith("method," + ",".join(TASKS) + ",mean: natural,mean: structured,mean of groups")
