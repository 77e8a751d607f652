"""Records round-trip; a real `-m` multirun of two runs leaves two ok records; resume is exact."""
import json
import subprocess
import sys

import pytest
import torch

from apbench import methods
from apbench.engine.loop import TrainSettings, fit
from apbench.results.store import BadRecord, iter_records, read_record, write_record


def test_record_round_trip_and_nan_becomes_null(tmp_path):
    rec = {"run_id": "abc", "status": "ok", "metrics": {"val_top1": 12.5, "train_loss": float("nan")},
           "layers": ["input", "3"], "params": {"total": 10}}
    path = write_record(tmp_path / "abc" / "record.json", rec)
    back = read_record(path)
    assert back["metrics"] == {"val_top1": 12.5, "train_loss": None}
    assert back["layers"] == ["input", "3"] and back["params"] == {"total": 10}
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]    # no temporary file left


def test_bad_status_is_refused_and_garbage_is_reported(tmp_path):
    with pytest.raises(ValueError, match="status must be one of"):
        write_record(tmp_path / "x" / "record.json", {"run_id": "x", "status": "great"})
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "record.json").write_text('{"run_id": "y", "sta')
    with pytest.raises(BadRecord, match="not a readable JSON record"):
        read_record(tmp_path / "y" / "record.json")
    bad = []
    assert list(iter_records(tmp_path, bad)) == [] and bad[0][0].endswith("y/record.json")


def test_multirun_of_two_runs(tiny_overrides, tmp_path):
    out = subprocess.run([sys.executable, "-m", "apbench", "run", "-m", *tiny_overrides,
                          "method=linear_probe,ap"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    recs = list(iter_records(tmp_path / "runs"))
    assert sorted(r["method"] for r in recs) == ["ap", "linear_probe"]
    assert all(r["status"] == "ok" for r in recs)
    assert len({r["run_id"] for r in recs}) == 2


class _Killed(Exception):
    pass


def test_resume_from_checkpoint_gives_identical_result(tmp_path, make_tiny):
    from apbench.engine.seeding import seed_everything
    data = torch.utils.data.TensorDataset(torch.randn(24, 3, 32, 32), torch.randint(0, 10, (24,)))
    s = TrainSettings(epochs=3, batch_size=8, lr=1e-2, progress=False, warmup_epochs=0)

    def trained(interrupt_after=None, ckpt=None):
        seed_everything(0)
        a = methods.apply(make_tiny("resnet"), "ap", input_size=(3, 32, 32), layers=[2])

        def on_epoch(h):
            if interrupt_after and h["epoch"] == interrupt_after:
                raise _Killed
        try:
            out = fit(a, data, torch.device("cpu"), s, seed=0, checkpoint_path=ckpt, on_epoch=on_epoch)
        except _Killed:
            return None
        return out, {n: p.detach().clone() for n, p in a.model.named_parameters() if p.requires_grad}

    ref, ref_params = trained()
    ckpt = tmp_path / "checkpoint.pt"
    assert trained(interrupt_after=2, ckpt=ckpt) is None and ckpt.exists()
    out, params = trained(ckpt=ckpt)
    assert out["resumed_from"] == 2
    assert out["history"] == ref["history"]
    for n in ref_params:
        assert torch.equal(params[n], ref_params[n]), n


def test_a_sweep_with_a_refused_cell_runs_the_others_and_exits_2(tiny_overrides, tmp_path):
    # layer 9 does not exist in the tiny ResNet: that cell is refused, the other one still runs.
    out = subprocess.run([sys.executable, "-m", "apbench", "run", "-m", *tiny_overrides,
                          "method=ap", "method.layers=2,9"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "1 cell(s) of the sweep were refused" in out.stderr and "#1 " in out.stderr
    assert "method.layers=9" in out.stderr.split("were refused")[1]
    recs = list(iter_records(tmp_path / "runs"))
    assert [(r["layers"], r["status"]) for r in recs] == [(["2"], "ok")]
