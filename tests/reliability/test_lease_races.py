"""Leases under attack: many processes taking over one stale lease at once end with exactly one holder;
every lease file that is not a well-formed fresh lease follows the one documented rule (stale once the
file is older than ``STALE_S``), never live forever, never a traceback; SIGTERM releases the lease and
exits non-zero, keeping the last checkpoint, so a requeued job resumes at once."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import subprocess
import sys
import time

import pytest
import torch

from apbench import lease
from apbench.engine import checkpoint as ckpt
from apbench.run import run, run_dir_of, run_id_of
from apbench.termination import EXIT_STATUS, Terminated, exits_on_sigterm

from conftest import compose
from .conftest import TINY, cli_env, records_under, tiny
from .test_kill_resume import LONG, _wait_for
from .test_resume_identity import BASE

OLD = time.time() - lease.STALE_S - 60  # a modification time past the limit


def _lease_text(heartbeat, host="node-17", pid=4242) -> str:
    return json.dumps({"host": host, "pid": pid, "run_id": "r", "token": "old", "started": 0, "heartbeat": heartbeat})


# Every shape of lease file that is not a fresh, well-formed lease. Each writes PATH; the file's own age decides.
KINDS = {
    "garbled": lambda p: p.write_bytes(b'{"host": "node-17", "pid": 42'),
    "empty": lambda p: p.write_bytes(b""),
    "binary": lambda p: p.write_bytes(bytes(range(256))),
    "json_list": lambda p: p.write_text("[1, 2, 3]"),
    "heartbeat_string": lambda p: p.write_text(_lease_text("yesterday")),
    "heartbeat_bool": lambda p: p.write_text(_lease_text(True)),
    "heartbeat_list": lambda p: p.write_text(_lease_text([1, 2])),
    "heartbeat_nan": lambda p: p.write_text(_lease_text(float("nan"))),
    "heartbeat_huge": lambda p: p.write_text(_lease_text(10 ** 400)),
    "heartbeat_missing": lambda p: p.write_text(json.dumps({"host": "node-17", "pid": 42})),
    "heartbeat_in_future": lambda p: p.write_text(_lease_text(time.time() + 10 ** 7)),
    "folder": lambda p: (p.mkdir(), (p / "x").write_text("y")),
    "dangling_link": lambda p: p.symlink_to(p.parent / "nowhere"),
    "fifo": lambda p: os.mkfifo(p),
}


def _plant(run_dir, kind: str, old: bool) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / lease.LEASE_NAME
    KINDS[kind](path)
    if old:
        os.utime(path, (OLD, OLD), follow_symlinks=False)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_lease_file_that_is_no_fresh_lease_is_held_until_the_file_is_stale(kind, tmp_path, tally):
    tally.bad_inputs += 1
    _plant(tmp_path / "young", kind, old=False)
    info = lease.holder(tmp_path / "young")
    assert info is not None and info["problem"], info  # written moments ago: held, and said why
    why = lease.describe(info)
    assert why.startswith("held by a lease file that is ") and f"until its file is {lease.STALE_S:.0f} s old" in why
    assert lease.acquire(tmp_path / "young", "r") is None
    tally.clear_errors += 1

    _plant(tmp_path / "old", kind, old=True)
    assert lease.holder(tmp_path / "old") is None  # the file is older than the limit: stale
    held = lease.acquire(tmp_path / "old", "r")
    assert held is not None
    path = tmp_path / "old" / lease.LEASE_NAME
    assert path.is_file() and not path.is_symlink() and json.loads(path.read_text())["token"] == held.token
    held.release()
    assert list((tmp_path / "old").iterdir()) == []  # the old file, the take-over token: all gone


def test_an_unreadable_lease_file_follows_the_same_rule(tmp_path, monkeypatch, tally):
    def refuse(*a, **k):  # as a file of another user without read permission (root reads every file)
        raise PermissionError(13, "Permission denied")
    tally.bad_inputs += 1
    for name, mtime in (("young", time.time()), ("old", OLD)):
        (tmp_path / name).mkdir()
        (tmp_path / name / lease.LEASE_NAME).write_text(_lease_text(time.time()))
        os.utime(tmp_path / name / lease.LEASE_NAME, (mtime, mtime))
    with monkeypatch.context() as m:
        m.setattr(lease, "open", refuse, raising=False)
        young, old = lease.holder(tmp_path / "young"), lease.holder(tmp_path / "old")
    assert young["problem"] == "unreadable (Permission denied)" and old is None
    tally.clear_errors += 1


def test_a_heartbeat_slightly_ahead_of_this_clock_still_counts_as_live(tmp_path):
    # Another host's clock a few seconds ahead: aged by the file, which it just rewrote -- held, not stale.
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / lease.LEASE_NAME).write_text(_lease_text(time.time() + 5))
    assert lease.holder(tmp_path / "r")["problem"].startswith("a lease with an unusable heartbeat")
    assert lease.acquire(tmp_path / "r", "r") is None


def test_a_fresh_garbled_lease_is_reported_and_the_run_is_not_trained(tmp_path, capsys, tally):
    cfg = compose(*BASE, "method=linear_probe", f"paths.root_dir={tmp_path}")
    rdir = run_dir_of(cfg, run_id_of(cfg))
    _plant(rdir, "garbled", old=False)  # caught mid-rewrite, or written by a foreign tool: not a free lease
    tally.bad_inputs += 1
    capsys.readouterr()
    rec = run(cfg)
    out = capsys.readouterr().out
    assert rec["status"] == "skipped" and "held by a lease file that is not a lease (no JSON object)" in out
    assert not (rdir / "record.json").exists() and not (rdir / "checkpoint.pt").exists()
    tally.clear_errors += 1


# -- many takers at once ------------------------------------------------------------------------------------------

TAKERS, TRIALS = 6, 60
RACE_KINDS = ("heartbeat_old", "garbled", "heartbeat_in_future", "heartbeat_string", "folder")


def _taker(barrier, jobs, results):
    while (run_dir := jobs.get()) is not None:
        barrier.wait()
        try:
            held = lease.acquire(run_dir, "r")
        except Exception as e:  # reported, not a hung queue
            results.put(f"raised {e!r}")
            continue
        if held is not None:
            held._stop.set()  # keep the lease file (a holder), stop its heartbeat thread
        results.put(held.token if held else None)


def _plant_stale(run_dir, kind: str) -> None:
    if kind == "heartbeat_old":
        run_dir.mkdir(parents=True)
        (run_dir / lease.LEASE_NAME).write_text(_lease_text(OLD))
    else:
        _plant(run_dir, kind, old=True)


def test_a_stale_lease_taken_over_by_many_processes_at_once_has_exactly_one_holder(tmp_path, tally):
    ctx = multiprocessing.get_context("fork")  # real processes, released together by a barrier
    barrier, jobs, results = ctx.Barrier(TAKERS), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_taker, args=(barrier, jobs, results), daemon=True) for _ in range(TAKERS)]
    for p in procs:
        p.start()
    try:
        holders = []
        for trial in range(TRIALS):
            run_dir = tmp_path / f"trial{trial}"
            _plant_stale(run_dir, RACE_KINDS[trial % len(RACE_KINDS)])
            for _ in procs:
                jobs.put(run_dir)
            tokens = [results.get(timeout=60) for _ in procs]
            won = [t for t in tokens if t is not None]
            holders.append(len(won))
            on_disk = json.loads((run_dir / lease.LEASE_NAME).read_text())["token"]
            assert won == [on_disk], (trial, RACE_KINDS[trial % len(RACE_KINDS)], won, on_disk)
            assert sorted(p.name for p in run_dir.iterdir()) == [lease.LEASE_NAME]  # no aside file or token left
        tally.writers += TAKERS
        tally.writes += TRIALS * TAKERS
        assert holders == [1] * TRIALS
    finally:
        for _ in procs:
            jobs.put(None)
        for p in procs:
            p.join(10)


def test_a_slow_taker_never_replaces_the_lease_a_faster_one_took(tmp_path):
    # The interleaving behind double holders, made deterministic: B judged the old lease stale, A took it
    # over meanwhile; B's take-over of the version it judged must leave A's lease alone.
    _plant_stale(tmp_path / "r", "heartbeat_old")
    judged_by_b = lease.look(tmp_path / "r" / lease.LEASE_NAME)
    a = lease.acquire(tmp_path / "r", "r")
    assert a is not None
    assert lease.take_over(tmp_path / "r" / lease.LEASE_NAME, judged_by_b, _lease_text(time.time()), "b") is False
    assert lease.read(tmp_path / "r" / lease.LEASE_NAME)["token"] == a.token
    a.release()


def test_a_taker_that_died_inside_its_take_over_blocks_it_only_until_its_token_is_stale(tmp_path):
    _plant_stale(tmp_path / "r", "heartbeat_old")
    seen = lease.look(tmp_path / "r" / lease.LEASE_NAME)
    token = tmp_path / "r" / f".{lease.LEASE_NAME}.takeover.{seen.key}.0"
    token.write_text("dead taker")  # created, then its process was killed
    assert lease.acquire(tmp_path / "r", "r") is None  # a take-over is in progress: not ours to race
    os.utime(token, (OLD, OLD))
    held = lease.acquire(tmp_path / "r", "r")
    assert held is not None and not token.exists()
    held.release()


# -- SIGTERM ------------------------------------------------------------------------------------------------------

def test_sigterm_while_a_checkpoint_is_written_waits_for_the_write(tmp_path, monkeypatch):
    assert threading.current_thread() is threading.main_thread()  # else the signal would end this test process
    real_save = torch.save

    def save_then_signalled(obj, f, *a, **k):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the checkpoint write
        time.sleep(0.05)
        real_save(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", save_then_signalled)
    with pytest.raises(Terminated) as e, exits_on_sigterm():
        ckpt.save(tmp_path / "checkpoint.pt", {"epoch": 3, "x": torch.arange(4)})
    assert e.value.code == EXIT_STATUS == 143
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 3  # complete, then stopped
    assert signal.getsignal(signal.SIGTERM) is not None and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


@pytest.mark.slow
def test_sigterm_releases_the_lease_keeps_the_checkpoint_and_exits_non_zero(tmp_path, monkeypatch, tally):
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "apbench", *tiny(root, *LONG)], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ck = _wait_for("checkpoint.pt", root, proc)
        assert (ck.parent / lease.LEASE_NAME).is_file()  # training, lease held
        proc.send_signal(signal.SIGTERM)  # what SLURM sends before pre-empting the job
        out = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
    tally.killed += 1
    assert proc.returncode == 143, out[-3000:]  # non-zero: the launcher requeues it
    assert "stopped by SIGTERM (pre-emption); its last epoch checkpoint is kept, its lease released" in out
    assert "Traceback" not in out
    assert not (ck.parent / lease.LEASE_NAME).exists()  # a requeue on another node need not wait STALE_S
    assert records_under(root) == [] and ckpt.load(ck) is not None
    # The requeued job, on "another node" (in-process: one Python start less): with the lease gone it
    # resumes at once, though no take-over by age could help it.
    monkeypatch.setattr(lease, "STALE_S", 100_000.0)
    rec = run(compose(*TINY, f"paths.root_dir={root}", *LONG))
    assert rec["status"] == "ok" and rec["resumed_from_epoch"] >= 1 and records_under(root) == [ck.parent / "record.json"]
    tally.resumed += 1
