"""SIGKILL in the middle of training, then re-launch: the result is the uninterrupted one, and no half
state (record, checkpoint) is ever taken for a good one."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from apbench import methods
from apbench.engine import checkpoint as ckpt
from apbench.engine.loop import TrainSettings, fit
from apbench.engine.seeding import seed_everything

from .conftest import apbench, cli_env, records_under, tiny

# 200 training images: ~0.4 s an epoch here, long enough to land a kill inside training.
# The prefix cache would make these epochs too quick to kill mid-training: train the full model.
LONG = ("trainer.epochs=6", "trainer.measure_efficiency=false", "dataset.train_size=200", "trainer.prefix_cache=off")


def _wait_for(pattern, root, proc, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        hits = list(root.rglob(pattern))
        if hits:
            return hits[0]
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc={proc.returncode}) before writing {pattern}")
        time.sleep(0.02)
    pytest.fail(f"no {pattern} under {root} after {timeout} s")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, tally):
    seed = int(os.environ.get("APBENCH_KILL_SEED", random.randrange(10_000)))
    rng = random.Random(seed)
    ref_root, root = tmp_path / "reference", tmp_path / "killed"
    # The uninterrupted reference runs side by side with the run to be killed.
    ref = subprocess.Popen([sys.executable, "-m", "apbench", *tiny(ref_root, *LONG)], cwd=tmp_path, env=cli_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = subprocess.Popen([sys.executable, "-m", "apbench", *tiny(root, *LONG)], cwd=tmp_path, env=cli_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ck = _wait_for("checkpoint.pt", root, victim)
        delay = rng.uniform(0.0, 1.2)  # somewhere in epochs 2..4
        time.sleep(delay)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    finally:
        victim.kill()
    tally.killed += 1
    print(f"killed after {delay:.2f} s past the first checkpoint (APBENCH_KILL_SEED={seed})")
    assert victim.returncode == -signal.SIGKILL
    partial = records_under(root)
    tally.lost_or_corrupt += len(partial)
    assert partial == [], "a killed run must leave no record at all"
    assert ck.is_file() and ckpt.load(ck) is not None  # the last complete checkpoint survived the kill
    # ... and so did its lease: a dead process on this host, so the relaunch takes it over at once.
    assert (ck.parent / "lease.json").is_file()
    # What a kill during a checkpoint write leaves: an unfinished temp file. It must never be read.
    (ck.parent / ".checkpoint.pt.killed.tmp").write_bytes(b"PK\x03\x04 half a zip")

    out = apbench(*tiny(root, *LONG), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    ref_out, _ = ref.communicate(timeout=180)
    assert ref.returncode == 0, ref_out[-2000:]
    [rec_path], [ref_path] = records_under(root), records_under(ref_root)
    rec, want = json.loads(rec_path.read_text()), json.loads(ref_path.read_text())
    assert rec["status"] == want["status"] == "ok"
    assert rec["resumed_from_epoch"] >= 1 and want["resumed_from_epoch"] == 0
    tally.resumed += 1
    assert rec["run_id"] == want["run_id"]
    assert rec["history"] == want["history"]
    assert rec["metrics"] == want["metrics"]
    # checkpoint and temps gone; an AP run keeps its trained prompt (apbench analyze reads it)
    assert sorted(p.name for p in rec_path.parent.iterdir()) == (["prompt.pt", "record.json"] if rec["method"] == "ap" else ["record.json"])


class _Stop(Exception):
    pass


def _fit(make_tiny, data, settings, path, stop_after=None):
    seed_everything(0)
    adapted = methods.apply(make_tiny("resnet"), "ap", input_size=(3, 32, 32), layers=[2])

    def on_epoch(h):
        if stop_after and h["epoch"] == stop_after:
            raise _Stop
    try:
        return fit(adapted, data, torch.device("cpu"), settings, seed=0, checkpoint_path=path, on_epoch=on_epoch)
    except _Stop:
        return None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not_a_training_checkpoint", "epoch_mismatch"])
def test_damaged_checkpoint_is_ignored_and_training_restarts(damage, tmp_path, make_tiny, capfd):
    data = torch.utils.data.TensorDataset(torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))
    s = TrainSettings(epochs=3, batch_size=8, lr=1e-2, progress=False, warmup_epochs=0)
    fresh = _fit(make_tiny, data, s, None)
    path = tmp_path / "checkpoint.pt"
    assert _fit(make_tiny, data, s, path, stop_after=2) is None and ckpt.load(path) is not None
    if damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "not_a_training_checkpoint":
        torch.save({"weight": torch.zeros(3)}, path)
    else:
        state = torch.load(path, weights_only=True)
        torch.save(state | {"epoch": 7}, path)
    out = _fit(make_tiny, data, s, path)
    assert out["resumed_from"] == 0, "a damaged checkpoint must not be resumed from"
    assert out["history"] == fresh["history"]
    assert "ignoring unusable checkpoint" in capfd.readouterr().err
