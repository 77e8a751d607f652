"""Every dataset config composes and validates; suites list exactly their members and launch them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from apbench.data.manifest import FGVC, VTAB_GROUPS
from apbench.data.pkgsuite import TASKS as PKG
from apbench.validate import ConfigError, validate
from conftest import CONF, compose

DATASETS = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))
VTAB = [f"vtab1k_{t}" for g in ("natural", "specialized", "structured") for t in VTAB_GROUPS[g]]
FGVC_NAMES = [f"fgvc_{n}" for n in FGVC]
VP = ["cifar10", "cifar100", "svhn", "gtsrb", "food101", "flowers102", "dtd", "eurosat", "oxford_pets",
      "stanford_cars", "sun397", "ucf101"]
SUITES = {"vtab1k": VTAB, "fgvc": FGVC_NAMES, "vp": VP, "pkg": list(PKG),
          "paper29": VTAB + FGVC_NAMES + ["cifar10", "cifar100", "svhn", "gtsrb", "food101"]}


def test_the_expected_configs_exist():
    assert len(VTAB) == 19 and [len(VTAB_GROUPS[g]) for g in ("natural", "specialized", "structured")] == [7, 4, 8]
    assert set(VTAB + FGVC_NAMES + VP + ["image_folder"]) <= set(DATASETS)
    assert len(SUITES["paper29"]) == len(set(SUITES["paper29"])) == 29


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_config_composes_and_validates(name):
    cfg = compose(f"dataset={name}", "model=tiny_resnet", "device=cpu")
    assert cfg.dataset.name == name
    validate(cfg)  # keys checked against the loader's signature
    d = cfg.dataset
    if name.startswith("vtab1k_"):
        assert (d.protocol, d.format, d.augment) == ("vtab1k", "vtab1k", "none")
        assert d.group in ("natural", "specialized", "structured")
    elif name.startswith("fgvc_"):
        assert (d.protocol, d.format, d.augment) == ("fgvc", "fgvc_json", "crop_flip")
    elif name in VP:
        assert d.protocol == "fixed" and d.format in ("torchvision", "coop_split")


def test_a_misspelled_dataset_key_is_refused():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in dataset \(vtab1k_dtd\): 'foldr' \(did you mean 'folder'\?\)"):
        validate(compose("dataset=vtab1k_dtd", "+dataset.foldr=x", "model=tiny_resnet", "device=cpu"))


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_suite_sweeps_exactly_its_members(suite):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[f"+suite={suite}"], return_hydra_config=True)
    members = str(cfg.hydra.sweeper.params.dataset).split(",")
    assert members == SUITES[suite]
    assert "suite" not in cfg  # only the sweep is set: run ids are the same as without the suite


def test_multirun_suite_launches_every_member(tmp_path):
    """`apbench run -m +suite=fgvc` starts one job per member; with no data each fails before training,
    as bad input: no record, a message naming the missing folder, and the sweep goes on to the next,
    then exits 2 listing the refused cells."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "apbench", "run", "-m", "+suite=fgvc", "model=tiny_resnet", "trainer=fast",
           "device=cpu", "trainer.progress=false", f"paths.root_dir={tmp_path}", f"paths.data_root={tmp_path}/data"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]  # all five refused: the sweep says so at its end
    assert f"{len(FGVC_NAMES)} cell(s) of the sweep were refused" in out.stderr
    assert not list((tmp_path / "runs").glob("*/record.json"))
    assert out.stdout.count("Launching 5 jobs") == 1 or out.stderr.count("Launching 5 jobs") == 1
    assert out.stderr.count("apbench: bad input:") == len(FGVC_NAMES)
    assert out.stderr.count("folder not found") >= len(FGVC_NAMES)
