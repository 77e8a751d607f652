"""A checkpoint save that hits a full disk or a file-size limit says "disk full" and names the file; the
previous checkpoint stays whole and no temporary file is left."""
from __future__ import annotations

import errno
import resource

import pytest
import torch

from apbench.engine import checkpoint as ckpt
from apbench.run import run, run_dir_of, run_id_of

from conftest import compose
from .test_resume_identity import BASE


def test_a_checkpoint_over_the_file_size_limit_says_disk_full_and_names_the_file(tmp_path, tally):
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt.save(path, {"epoch": 1})  # the last good checkpoint
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    tally.bad_inputs += 1
    # A real limit, as `ulimit -f` or a full disk gives: writes past 2 kB fail with EFBIG (Python ignores
    # SIGXFSZ). Only the soft limit is lowered, and only around this save: it is raised back at once.
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
    try:
        with pytest.raises(ckpt.CheckpointWriteError) as e:
            ckpt.save(path, {"epoch": 2, "x": torch.zeros(100_000)})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert e.value.errno == errno.EFBIG
    assert f"disk full: could not write the checkpoint {path} (File too large)" in str(e.value)
    assert "ulimit -f" in str(e.value) and "paths.results_dir" in str(e.value)
    assert torch.load(path, weights_only=True) == {"epoch": 1}  # the previous one, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]  # no temporary file left
    tally.clear_errors += 1


def test_a_run_whose_checkpoint_hits_a_full_disk_fails_saying_so(tmp_path, monkeypatch, capsys, tally):
    real = torch.save

    def no_space(obj, f, *a, **k):
        if isinstance(obj, dict) and "optimizer" in obj:  # the epoch checkpoint, not other saves
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", no_space)
    cfg = compose(*BASE, "method=linear_probe", f"paths.root_dir={tmp_path}")
    tally.bad_inputs += 1
    capsys.readouterr()
    rec = run(cfg)
    path = run_dir_of(cfg, run_id_of(cfg)) / "checkpoint.pt"
    assert rec["status"] == "failed" and rec["error"]["type"] == "CheckpointWriteError"
    assert f"disk full: could not write the checkpoint {path} (No space left on device)" in rec["error"]["message"]
    assert "failed: CheckpointWriteError: [Errno 28] disk full" in capsys.readouterr().out
    tally.clear_errors += 1
