"""Identity from what was run: records name the data, model and weights actually used; a finished run
whose inputs changed is run again, saying what changed; the options left out of the run id leave
results bit-identical."""
from __future__ import annotations

import hashlib

import pytest
import timm
import torch

from apbench import identity
from apbench.results.store import read_record, write_record
from apbench.run import run, run_dir_of, run_id_of

from conftest import compose
from data_writers import image

BASE = ["model=tiny_resnet", "trainer=fast", "device=cpu", "trainer.measure_efficiency=false"]


def _folder(root, classes=("cat", "dog", "owl"), per_class=2):
    for split in ("train", "val", "test"):
        for c, cls in enumerate(classes):
            for i in range(per_class):
                image(root / "data" / "my_pets" / split / cls / f"{i}.png", c, i)
    return root / "data" / "my_pets"


def _cfg(tmp_path, *extra):
    return compose(*BASE, f"paths.root_dir={tmp_path}", *extra)


def test_an_image_folder_record_names_the_folder_its_classes_and_count(tmp_path):
    folder = _folder(tmp_path)
    rec = run(_cfg(tmp_path, "dataset=image_folder", f"dataset.path={folder}"))
    assert rec["status"] == "ok"
    assert (rec["dataset"], rec["dataset_config"]) == ("my_pets", "image_folder")
    assert rec["num_classes"] == 3 and rec["class_names"] == ["cat", "dog", "owl"]
    named = run(_cfg(tmp_path, "dataset=image_folder", f"dataset.path={folder}", "dataset.name=pets"))
    assert named["dataset"] == "pets" and named["run_id"] != rec["run_id"]


def _save_weights(path, bump=0.0):
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, layers=[1, 1, 1, 1])
    with torch.no_grad():
        model.conv1.weight.view(-1)[0] += bump
    torch.save(model.state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_record_names_the_architecture_and_the_weights_file_it_loaded(tmp_path):
    ck = tmp_path / "backbone.pth"
    sha = _save_weights(ck)
    rec = run(_cfg(tmp_path, "dataset=fmnist_tiny", "model.weights=file", f"model.checkpoint={ck}"))
    assert rec["status"] == "ok"
    assert (rec["model"], rec["model_config"]) == ("resnet18", "tiny_resnet")
    assert rec["weights"] == {"source": "file", "tag": None, "path": str(ck.resolve()), "sha256": sha}
    assert rec["identity"]["inputs"]["weights"] == sha and rec["identity"]["config_digest"] == rec["run_id"]
    assert set(rec["identity"]) >= {"config_digest", "inputs", "digest"}


def test_a_finished_run_whose_weights_changed_runs_again_and_says_so(tmp_path, capsys):
    ck = tmp_path / "backbone.pth"
    _save_weights(ck)
    cfg = _cfg(tmp_path, "dataset=fmnist_tiny", "model.weights=file", f"model.checkpoint={ck}")
    first = run(cfg)
    assert first["status"] == "ok" and "skipped" not in capsys.readouterr().out
    again = run(cfg)
    assert again["started_at"] == first["started_at"] and "skipped" in capsys.readouterr().out
    new_sha = _save_weights(ck, bump=1.0)
    redone = run(cfg)
    out = capsys.readouterr().out
    assert "made from other inputs: the weights file" in out and "running it again" in out
    assert redone["identity"]["inputs"]["weights"] == new_sha != first["identity"]["inputs"]["weights"]
    assert read_record(run_dir_of(cfg, run_id_of(cfg)) / "record.json")["identity"] == redone["identity"]
    assert redone["run_id"] == first["run_id"]  # the same config: the same run folder, the record replaced


def test_a_finished_run_whose_images_changed_runs_again_and_says_which_split(tmp_path, capsys):
    folder = _folder(tmp_path)
    cfg = _cfg(tmp_path, "dataset=image_folder", f"dataset.path={folder}")
    first = run(cfg)
    image(folder / "train" / "dog" / "new.png", 1, 7)   # one more training image
    redone = run(cfg)
    out = capsys.readouterr().out
    assert "made from other inputs: the data (train split" in out
    assert redone["data"]["sizes"]["train"] == first["data"]["sizes"]["train"] + 1
    assert run(cfg)["started_at"] == redone["started_at"]   # unchanged since: skipped


def test_a_record_without_identity_is_skipped_saying_its_inputs_are_not_checked(tmp_path, capsys):
    cfg = _cfg(tmp_path, "dataset=fmnist_tiny")
    old = {"run_id": run_id_of(cfg), "status": "ok", "metrics": {"test_top1": 42.0}}
    write_record(run_dir_of(cfg, run_id_of(cfg)) / "record.json", old)
    assert run(cfg)["metrics"] == {"test_top1": 42.0}
    assert "without input digests" in capsys.readouterr().out
    # An old record in the folder of the earlier run-id rule (before trainer.prefix_cache & co. left it).
    legacy_cfg = _cfg(tmp_path / "legacy", "dataset=fmnist_tiny")
    legacy = run_dir_of(legacy_cfg, identity.legacy_run_id(legacy_cfg)) / "record.json"
    assert identity.legacy_run_id(legacy_cfg) != run_id_of(legacy_cfg)
    write_record(legacy, old | {"run_id": identity.legacy_run_id(legacy_cfg)})
    assert run(legacy_cfg)["metrics"] == {"test_top1": 42.0}
    assert "from before run ids left out" in capsys.readouterr().out
    assert not (run_dir_of(legacy_cfg, run_id_of(legacy_cfg)) / "record.json").exists()


NON_IDENTITY_CHANGES = {  # option -> a changed value (composed into an otherwise equal config)
    "trainer.progress": "trainer.progress=true",
    "trainer.prefix_cache": "trainer.prefix_cache=off",
    "trainer.prefix_cache_dir": "trainer.prefix_cache_dir={tmp}/store",
    "trainer.measure_efficiency": "trainer.measure_efficiency=true",
    "trainer.throughput_warmup": "trainer.throughput_warmup=2",
    "trainer.throughput_iters": "trainer.throughput_iters=3",
    "dataset.cache": "dataset.cache=memory",
    "dataset.cache_dir": "dataset.cache=disk +dataset.cache_dir={tmp}/dcache",  # (no dataset YAML declares it)
}


def test_the_non_identity_list_is_the_contract():
    assert NOT_IDENTITY_CONTRACT == set(identity.NOT_IDENTITY)
    assert set(NON_IDENTITY_CHANGES) | {"paths", "logger", "hydra", "force"} == set(identity.NOT_IDENTITY)


NOT_IDENTITY_CONTRACT = {"paths", "logger", "hydra", "force", "trainer.progress", "trainer.prefix_cache",
                         "trainer.prefix_cache_dir", "trainer.measure_efficiency", "trainer.throughput_warmup",
                         "trainer.throughput_iters", "dataset.cache", "dataset.cache_dir"}


@pytest.mark.slow
def test_non_identity_options_leave_results_bit_identical(tmp_path):
    # AP after block 2 on a frozen backbone: the prefix cache is on by default, so turning it off and
    # sharing its store are real changes of the code path.
    # An image folder: the decode cache (dataset.cache) applies to image files only.
    common = ["dataset=image_folder", f"dataset.path={_folder(tmp_path, per_class=4)}", "method=ap", "method.layers=[2]", "method.init=normal", "trainer.epochs=2",
              "trainer.measure_efficiency=false"]
    ref = run(_cfg(tmp_path / "ref", *common))
    assert ref["prefix_cache"]["used"] and ref["status"] == "ok"
    for option, change in NON_IDENTITY_CHANGES.items():
        cfg = _cfg(tmp_path / option, *common, *change.format(tmp=tmp_path).split(), "logger=none", "force=true")
        assert run_id_of(cfg) == ref["run_id"], option
        rec = run(cfg)
        assert rec["status"] == "ok", (option, rec.get("error"))
        assert rec["history"] == ref["history"], option
        assert rec["metrics"] == ref["metrics"], option
        assert rec["identity"]["digest"] == ref["identity"]["digest"], option
    assert list((tmp_path / "dcache").glob("*.npy")) and list((tmp_path / "store").glob("*.pt"))  # really used
