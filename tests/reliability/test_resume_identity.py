"""Resuming is exact, and only ever from this run's own checkpoint.

A run interrupted after an epoch (its checkpoint written) and launched again must end with the very
record of an uninterrupted run: history, metrics and label maps bit for bit, on the pipelines where
state outside the trainable tensors matters (RNG for augmentation and dropout, BatchNorm running
statistics, the prefix cache, FLM/ILM label maps). A checkpoint copied from another run is ignored
with a warning and removed."""
from __future__ import annotations

import shutil

import pytest

import apbench.run as run_module
from apbench.run import run, run_dir_of, run_id_of

from conftest import compose

BASE = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", "trainer.epochs=3",
        "trainer.measure_efficiency=false", "trainer.lr=0.05"]


class _Interrupted(KeyboardInterrupt):
    pass


def _interrupted_after(cfg, epoch, monkeypatch):
    """Run ``cfg`` and stop it (as Ctrl-C or a preemption would) once ``epoch`` is checkpointed."""
    def log(self, h, step=None):
        if h["epoch"] == epoch:
            raise _Interrupted
    with monkeypatch.context() as m:
        m.setattr(run_module._NoLogger, "log", log)
        with pytest.raises(_Interrupted):
            run(cfg)
    ck = run_dir_of(cfg, run_id_of(cfg)) / "checkpoint.pt"
    assert ck.is_file() and not (ck.parent / "record.json").exists()
    return ck


CASES = {
    "augmentation_and_dropout": ["method=full_ft", "dataset.augment=crop_flip", "+model.kwargs.drop_rate=0.5"],
    "full_ft_bn_statistics": ["method=full_ft"],
    "prefix_cache": ["method=ap", "method.layers=[2]", "method.init=normal"],
    "flm_head": ["method=ap", "method.layers=[2]", "method.head=flm"],
    "ilm_head": ["method=ap", "method.layers=[2]", "method.head=ilm"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(case, tmp_path, monkeypatch, tally):
    ref = run(compose(*BASE, *CASES[case], f"paths.root_dir={tmp_path / 'reference'}"))
    cfg = compose(*BASE, *CASES[case], f"paths.root_dir={tmp_path / 'interrupted'}")
    _interrupted_after(cfg, 1, monkeypatch)
    tally.killed += 1
    rec = run(cfg)
    assert ref["status"] == rec["status"] == "ok", rec.get("error")
    assert (ref["resumed_from_epoch"], rec["resumed_from_epoch"]) == (0, 1)
    tally.resumed += 1
    if case == "prefix_cache":
        assert rec["prefix_cache"]["used"] and rec["prefix_cache"]["point"] == "2"
    if case == "full_ft_bn_statistics":
        assert rec["bn_mode"] == "train_stats"
    if case.endswith("_head"):
        assert rec["label_map"] is not None
        assert rec["label_map_history"] == ref["label_map_history"]
        assert rec["label_map"] == ref["label_map"]
        assert len(rec["label_map_history"]) == (1 if case == "flm_head" else 3)
        assert "label_map_computed_at_epoch" not in rec["method_info"]
    assert rec["history"] == ref["history"]
    assert rec["metrics"] == ref["metrics"]
    assert rec["identity"] == ref["identity"]


@pytest.mark.parametrize("into", ["ap_seed_1", "linear_probe"])
def test_a_checkpoint_of_another_run_is_ignored_with_a_warning_and_removed(into, tmp_path, monkeypatch, capfd,
                                                                           tally):
    ap = ["method=ap", "method.layers=[2]", "method.init=normal"]
    donor = compose(*BASE, *ap, "seed=0", f"paths.root_dir={tmp_path}")
    ck = _interrupted_after(donor, 2, monkeypatch)
    other = ap + ["seed=1"] if into == "ap_seed_1" else ["method=linear_probe"]
    ref = run(compose(*BASE, *other, f"paths.root_dir={tmp_path / 'reference'}"))
    cfg = compose(*BASE, *other, f"paths.root_dir={tmp_path}")
    target = run_dir_of(cfg, run_id_of(cfg))
    target.mkdir(parents=True)
    shutil.copy(ck, target / "checkpoint.pt")   # a user's copy, or a run folder reused by hand
    capfd.readouterr()
    tally.bad_inputs += 1
    rec = run(cfg)
    err = capfd.readouterr().err
    assert "belongs to another run" in err and "removed it, training from scratch" in err
    tally.clear_errors += 1
    assert rec["status"] == "ok" and rec["resumed_from_epoch"] == 0
    assert rec["history"] == ref["history"] and rec["metrics"] == ref["metrics"]
    kept = ["prompt.pt", "record.json"] if rec["method"] == "ap" else ["record.json"]  # AP keeps its prompt
    assert sorted(p.name for p in target.iterdir()) == kept
    assert ck.is_file()  # the donor's own checkpoint is untouched, and still resumes the donor
    assert run(donor)["resumed_from_epoch"] == 2
