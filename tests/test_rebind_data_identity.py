"""scripts/rebind_data_identity.py: a record is re-bound to a re-written copy of its generated task only
where the listing alone changed and the files are what the task's manifest says; nothing else moves."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from apbench import identity
from apbench.data.pkgsuite.sources import Sources
from apbench.data.pkgsuite.write import prepare, task_folder
from apbench.results.store import write_record
from conftest import compose
from data_writers import PRE

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rebind_data_identity.py"
SMALL = {"train": 40, "val": 40, "test": 40}


@pytest.fixture(scope="module")
def rebind():
    spec = importlib.util.spec_from_file_location("rebind_data_identity", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(root: Path, runs: Path, *overrides: str, identity_of: tuple[str, ...] | None = None) -> Path:
    """An ok record of a linear probe on pkg_size, its identity made now (or from other overrides)."""
    cfg = compose("dataset=pkg_size", "model=tiny_resnet", "method=linear_probe", f"paths.data_root={root}",
                  *overrides)
    ident_cfg = cfg if identity_of is None else compose(
        "dataset=pkg_size", "model=tiny_resnet", "method=linear_probe", f"paths.data_root={root}", *identity_of)
    ident = identity.of_config(ident_cfg, PRE)
    rec = {"status": "ok", "run_id": ident["config_digest"], "config": OmegaConf.to_container(cfg),
           "preprocessing": PRE, "identity": ident, "data": {"source": str(task_folder(root, "pkg_size"))},
           "metrics": {"val_top1": 71.25}}
    return write_record(runs / f"r{len(list(runs.glob('*')))}" / "record.json", rec)


def test_only_a_listing_that_changed_alone_is_rebound(rebind, tmp_path):
    root, runs = tmp_path / "data", tmp_path / "runs"
    prepare("pkg_size", root, SMALL, Sources())
    same = _record(root, runs)
    other_config = _record(root, runs, "seed=1", identity_of=("seed=2",))
    before = {p: json.loads(p.read_text()) for p in (same, other_config)}
    for p in task_folder(root, "pkg_size").rglob("*.png"):  # a copy written at another time
        os.utime(p, (1_000_000_000, 1_000_000_000))
    assert rebind.main([str(runs)]) == 0

    rec = json.loads(same.read_text())
    cfg = OmegaConf.create(rec["config"])
    assert rec["identity"] == identity.of_config(cfg, PRE) != before[same]["identity"]
    assert rec["identity_rebound"]["before"] == before[same]["identity"]
    manifest = json.loads((task_folder(root, "pkg_size") / "manifest.json").read_text())
    assert rec["identity_rebound"]["manifest_digest"] == manifest["digest"]
    assert {k: v for k, v in rec.items() if k not in ("identity", "identity_rebound")} == \
        {k: v for k, v in before[same].items() if k != "identity"}
    assert json.loads(other_config.read_text()) == before[other_config]  # its config digest moved too

    assert rebind.main([str(runs)]) == 0  # a second pass changes nothing
    assert json.loads(same.read_text()) == rec


def test_a_task_whose_files_differ_from_its_manifest_is_left_alone(rebind, tmp_path, capsys):
    root, runs = tmp_path / "data", tmp_path / "runs"
    prepare("pkg_size", root, SMALL, Sources())
    path = _record(root, runs)
    before = path.read_text()
    png = sorted(task_folder(root, "pkg_size").rglob("*.png"))[0]
    pixels = np.asarray(Image.open(png)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]  # an image edited in place
    Image.fromarray(pixels).save(png)
    assert rebind.main([str(runs)]) == 0
    assert path.read_text() == before
    assert "its files are not what its manifest says" in capsys.readouterr().err
