"""Concurrency and leftovers: a lease file per run (no flock: NFS/Lustre), so two identical sweeps on one
results folder train each run once; a killed run is resumed once its lease is stale; a checkpoint left
beside an ok record is cleaned; a read-only run folder is named; files follow the umask."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import torch

from apbench import lease
from apbench.engine import checkpoint as ckpt
from apbench.engine.prefix_store import PrefixStore
from apbench.results.store import write_record
from apbench.run import run, run_dir_of, run_id_of
from apbench.errors import InputError

from conftest import compose
from .conftest import cli_env, records_under, tiny
from .test_resume_identity import BASE, _interrupted_after

SWEEP = ("trainer.epochs=2", "trainer.measure_efficiency=false", "seed=0,1,2")


def _sweep(tmp_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "apbench", *tiny(tmp_path / "shared", *SWEEP, multirun=True)],
                            cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _pause_while_holding_a_lease(proc: subprocess.Popen, root, timeout_s: float = 120.0) -> None:
    """SIGSTOP ``proc`` at a moment it holds a run's lease (its heartbeat stops; the lease stays live)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if list(root.rglob(lease.LEASE_NAME)):
            os.kill(proc.pid, signal.SIGSTOP)
            if list(root.rglob(lease.LEASE_NAME)):  # still held once stopped, not released in between
                return
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError(f"the first sweep never held a lease (exit {proc.poll()})")


@pytest.mark.slow
def test_two_identical_sweeps_train_each_run_once(tmp_path, tally):
    # The second sweep starts while the first is paused inside a run, so the overlap does not depend on
    # how fast two Python starts happen to be (left to chance, the first sweep can finish before the second begins).
    first = _sweep(tmp_path)
    try:
        _pause_while_holding_a_lease(first, tmp_path / "shared")
        second = _sweep(tmp_path)
        second_out = second.communicate(timeout=300)[0]
    finally:
        os.kill(first.pid, signal.SIGCONT)
    first_out = first.communicate(timeout=300)[0]
    outs = [first_out, second_out]
    assert [first.returncode, second.returncode] == [0, 0], "\n".join(o[-2000:] for o in outs)
    recs = [json.loads(p.read_text()) for p in records_under(tmp_path / "shared")]
    tally.writers += 2
    tally.writes += len(recs)
    assert sorted(r["seed"] for r in recs) == [0, 1, 2] and all(r["status"] == "ok" for r in recs)
    both = "\n".join(outs)
    for r in recs:  # each run: trained by one sweep, skipped (and said so) by the other
        skips = re.findall(rf"\[apbench\] {r['run_id']}: (being trained by \S+|a finished ok record exists)", both)
        assert len(skips) == 1, (r["run_id"], skips, both[-3000:])
    assert f"being trained by {socket.gethostname()}:{first.pid}" in second_out  # the paused run was skipped
    assert not list((tmp_path / "shared").rglob(lease.LEASE_NAME))  # every lease released


def _lease(rdir, age_s, host="node-17", pid=4242):
    rdir.mkdir(parents=True, exist_ok=True)
    beat = time.time() - age_s
    (rdir / lease.LEASE_NAME).write_text(json.dumps({"host": host, "pid": pid, "run_id": rdir.name, "token": "x",
                                                     "started": beat, "heartbeat": beat}))


def test_a_live_lease_is_respected_and_a_stale_one_is_taken_over_and_resumed(tmp_path, monkeypatch, capsys, tally):
    cfg = compose(*BASE, "method=linear_probe", f"paths.root_dir={tmp_path}")
    rdir = run_dir_of(cfg, run_id_of(cfg))
    _interrupted_after(cfg, 1, monkeypatch)          # the job on node-17 died after epoch 1 ...
    tally.killed += 1
    _lease(rdir, age_s=10)                           # ... 10 s ago: its lease is not stale yet
    capsys.readouterr()
    busy = run(cfg)
    out = capsys.readouterr().out
    assert busy["status"] == "skipped" and "being trained by node-17:4242" in out and "skipped here" in out
    assert f"goes stale after {lease.STALE_S:.0f} s" in out
    assert not (rdir / "record.json").exists() and (rdir / "checkpoint.pt").is_file()
    _lease(rdir, age_s=lease.STALE_S + 5)            # no heartbeat for longer than the stated time
    rec = run(cfg)
    assert rec["status"] == "ok" and rec["resumed_from_epoch"] == 1
    tally.resumed += 1
    assert sorted(p.name for p in rdir.iterdir()) == ["record.json"]


def test_a_lease_of_a_dead_process_on_this_host_is_stale_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _lease(tmp_path / "run", age_s=1, host=socket.gethostname(), pid=int(dead.stdout))
    assert lease.holder(tmp_path / "run") is None
    _lease(tmp_path / "run", age_s=1, host=socket.gethostname(), pid=os.getppid())  # a live process
    assert lease.holder(tmp_path / "run")["pid"] == os.getppid()
    assert lease.acquire(tmp_path / "run", "run") is None


def test_a_checkpoint_left_beside_an_ok_record_is_removed_on_the_next_launch(tmp_path, monkeypatch, capsys):
    cfg = compose(*BASE, "method=linear_probe", f"paths.root_dir={tmp_path}")
    ck = _interrupted_after(cfg, 1, monkeypatch)
    kept = ck.read_bytes()
    rec = run(cfg)
    # A kill between the record's rename and the checkpoint's removal leaves both.
    ck.write_bytes(kept)
    (ck.parent / ".checkpoint.pt.abc.tmp").write_bytes(b"half")
    capsys.readouterr()
    assert run(cfg)["started_at"] == rec["started_at"]  # skipped: the ok record stands
    assert "removed checkpoint.pt, .checkpoint.pt.abc.tmp left beside the ok record" in capsys.readouterr().out
    assert sorted(p.name for p in ck.parent.iterdir()) == ["record.json"]


def test_a_read_only_run_folder_is_reported_by_its_own_name(tmp_path, monkeypatch, tally):
    cfg = compose(*BASE, "method=linear_probe", f"paths.root_dir={tmp_path}")
    rdir = run_dir_of(cfg, run_id_of(cfg))
    rdir.mkdir(parents=True)
    rdir.chmod(0o555)
    if os.access(rdir, os.W_OK):  # root ignores the mode: refuse the write as the file system would
        real = tempfile.TemporaryFile  # the probe of filemode.make_writable_dir

        def refuse(*a, dir=None, **k):
            if dir is not None and os.path.samefile(dir, rdir):
                raise PermissionError(13, "Permission denied", str(dir))
            return real(*a, dir=dir, **k)
        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    tally.bad_inputs += 1
    try:
        with pytest.raises(InputError) as e:
            run(cfg)
    finally:
        rdir.chmod(0o755)
    assert f"the run folder {rdir} is not writable (Permission denied)" in str(e.value)
    assert f"chmod u+w {rdir}" in str(e.value)
    tally.clear_errors += 1


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_records_checkpoints_leases_and_store_entries_follow_the_umask(umask, tmp_path):
    old = os.umask(umask)
    try:
        rec = write_record(tmp_path / "r" / "record.json", {"run_id": "r", "status": "ok"})
        ckpt.save(tmp_path / "r" / "checkpoint.pt", {"epoch": 0})
        held = lease.acquire(tmp_path / "r", "r")
        store = PrefixStore(tmp_path / "store")
        store.save("k", torch.utils.data.TensorDataset(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)))
        modes = {p.name: p.stat().st_mode & 0o777 for p in (rec, tmp_path / "r" / "checkpoint.pt",
                                                             tmp_path / "r" / lease.LEASE_NAME, store.path("k"))}
        held.release()
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert modes == {"record.json": want, "checkpoint.pt": want, lease.LEASE_NAME: want, "k.pt": want}
