"""Many processes writing records into one results folder at once: nothing lost, nothing torn."""
from __future__ import annotations

import json
import multiprocessing as mp
import random

from apbench.results.store import BadRecord, iter_records, read_record, write_record

from .conftest import apbench

WRITERS, WRITES, SHARED = 4, 50, 10   # per writer: WRITES - SHARED own run ids + SHARED ids every writer writes
PAD = "x" * 20_000                    # a larger file widens the window in which a torn write could be seen


def _record(run_id: str, writer: int, k: int) -> dict:
    return {"schema": 1, "run_id": run_id, "status": "ok", "dataset": "fmnist_tiny", "model": "tiny_resnet",
            "method": "ap", "head": "linear", "layers": ["4"], "seed": k, "protocol": "fixed", "stage": "final",
            "metrics": {"val_top1": float(k), "test_top1": float(k), "train_loss": 1.0},
            "finished_at": f"2026-01-01T00:00:{k:02d}+00:00", "writer": writer, "pad": PAD}


def _writer(root: str, writer: int, barrier) -> None:
    rng = random.Random(writer)
    jobs = [(f"w{writer}-{k:02d}", k) for k in range(WRITES - SHARED)] + [(f"shared-{k}", k) for k in range(SHARED)]
    rng.shuffle(jobs)
    barrier.wait()
    for run_id, k in jobs:
        write_record(f"{root}/{run_id}/record.json", _record(run_id, writer, k))


def _reader(root: str, stop, torn) -> None:
    """Reads while the writers write: every record it sees must be whole."""
    while not stop.is_set():
        bad: list = []
        list(iter_records(root, bad))
        torn.value += len(bad)


def test_concurrent_writers_lose_and_tear_nothing(tmp_path, tally):
    ctx = mp.get_context("fork")
    barrier, stop, torn = ctx.Barrier(WRITERS), ctx.Event(), ctx.Value("i", 0)
    reader = ctx.Process(target=_reader, args=(str(tmp_path), stop, torn))
    reader.start()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, barrier)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    stop.set()
    reader.join(30)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]

    expected = {f"w{w}-{k:02d}" for w in range(WRITERS) for k in range(WRITES - SHARED)} | \
               {f"shared-{k}" for k in range(SHARED)}
    found, lost = {}, 0
    for run_id in expected:
        try:
            rec = read_record(tmp_path / run_id / "record.json")
            assert rec["run_id"] == run_id and rec["pad"] == PAD  # whole, and not another run's file
            found[run_id] = rec
        except (BadRecord, AssertionError):
            lost += 1
    leftovers = [p.name for p in tmp_path.rglob("*.tmp")]
    tally.writers += WRITERS
    tally.writes += WRITERS * WRITES
    tally.lost_or_corrupt += lost + torn.value + len(leftovers)
    assert lost == 0 and torn.value == 0, (lost, torn.value)
    assert leftovers == []
    assert {found[f"shared-{k}"]["writer"] for k in range(SHARED)} <= set(range(WRITERS))

    # Junk beside the records: each reported by name and skipped; every real record still read.
    (tmp_path / "junk-truncated").mkdir()
    (tmp_path / "junk-truncated" / "record.json").write_text(json.dumps(_record("t", 0, 1))[:300])
    (tmp_path / "junk-binary").mkdir()
    (tmp_path / "junk-binary" / "record.json").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "junk-empty").mkdir()
    (tmp_path / "junk-empty" / "record.json").write_text("")
    (tmp_path / "junk-list").mkdir()
    (tmp_path / "junk-list" / "record.json").write_text("[1, 2, 3]")
    out = apbench("results", str(tmp_path), "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{len(expected)} records read" in out.stdout
    for junk in ("junk-truncated", "junk-binary", "junk-empty", "junk-list"):
        assert f"{junk}/record.json" in out.stderr, junk
    assert "unreadable or invalid records (4; in no table)" in out.stdout
