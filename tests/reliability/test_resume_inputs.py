"""A checkpoint resumes only the run it was written by, on the inputs it was written from (issue 26 item 4):
one without an identity is not resumed by a run that has one, and one written before an image was
rewritten in place (same name, same size) is not resumed: the data digest moved."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from apbench.engine import checkpoint as ckpt
from apbench.run import run, run_dir_of, run_id_of

from conftest import compose
from .test_resume_identity import BASE, _interrupted_after


def test_a_checkpoint_without_an_identity_is_not_resumed(tmp_path, monkeypatch, capfd, tally):
    cfg = compose(*BASE, "method=linear_probe", f"paths.root_dir={tmp_path}")
    ref = run(compose(*BASE, "method=linear_probe", f"paths.root_dir={tmp_path / 'reference'}"))
    ck = _interrupted_after(cfg, 1, monkeypatch)
    state = torch.load(ck, weights_only=True)
    assert isinstance(state["identity"], str) and state["identity"]  # this run's, as written
    del state["identity"]  # as a checkpoint from before checkpoints carried one
    ckpt.save(ck, state)
    tally.bad_inputs += 1
    capfd.readouterr()
    rec = run(cfg)
    err = capfd.readouterr().err
    assert "ignoring checkpoint" in err and "(identity not recorded, this run " in err
    assert rec["status"] == "ok" and rec["resumed_from_epoch"] == 0  # from scratch ...
    assert rec["history"] == ref["history"] and rec["metrics"] == ref["metrics"]  # ... to the clean result
    tally.clear_errors += 1


def _bmp(path, value: int) -> None:
    """An uncompressed 8x8 image: its file size depends on its shape only, not on its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def test_a_checkpoint_is_not_resumed_after_an_image_was_rewritten_in_place(tmp_path, monkeypatch, capfd, tally):
    data = tmp_path / "folder"
    for split in ("train", "test"):
        for c, cls in enumerate(("cat", "dog")):
            for i in range(4):
                _bmp(data / split / cls / f"{i}.bmp", 40 * c + 10 * i)
    cfg = compose(*BASE, "method=linear_probe", "dataset=image_folder", f"dataset.path={data}",
                  "dataset.val_fraction=0.25", f"paths.root_dir={tmp_path / 'root'}")
    _interrupted_after(cfg, 1, monkeypatch)
    image = data / "train" / "cat" / "1.bmp"
    size = image.stat().st_size
    _bmp(image, 255)  # rewritten in place: the same name and size, other pixels (and a new mtime)
    assert image.stat().st_size == size
    tally.bad_inputs += 1
    capfd.readouterr()
    rec = run(cfg)
    err = capfd.readouterr().err
    assert "belongs to another run" in err and "this run's weights or data changed since" in err
    assert rec["status"] == "ok" and rec["resumed_from_epoch"] == 0
    assert sorted(p.name for p in run_dir_of(cfg, run_id_of(cfg)).iterdir()) == ["record.json"]
    tally.clear_errors += 1
