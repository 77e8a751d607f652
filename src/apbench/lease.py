"""A lease file per run: the process training a run says so, so that another launch skips it.

Results folders live on NFS or Lustre on clusters, where ``flock`` is unreliable; a lease uses only
what those file systems do atomically: ``open(O_CREAT | O_EXCL)`` (NFSv3 and later, Lustre) and
``rename``. ``<run folder>/lease.json`` holds {host, pid, run_id, started, heartbeat}; the holder
rewrites it every ``HEARTBEAT_S`` seconds and removes it when the run ends, however it ends.

A lease is **stale**, and another launch takes it over (a killed run is then resumed from its
checkpoint), when either
* its heartbeat is older than ``STALE_S`` (300 s: ten missed heartbeats; compared with this host's
  clock, so hosts' clocks must agree to within minutes, as NTP keeps them), or
* it was written on this host by a process that no longer exists (known at once, no waiting).
A lease that cannot be parsed (caught mid-rewrite) counts as held while its file is younger than
``STALE_S``.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .filemode import follow_umask

LEASE_NAME = "lease.json"
HEARTBEAT_S = 30.0
STALE_S = float(os.environ.get("APBENCH_LEASE_STALE_S", 300.0))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def holder(run_dir: Path) -> dict | None:
    """The live lease on ``run_dir`` (its content, with ``age_s``), or None when free or stale."""
    path = Path(run_dir) / LEASE_NAME
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    info = read(path)
    now = time.time()
    if not isinstance(info, dict):
        return {"host": "?", "pid": "?", "age_s": now - mtime} if now - mtime < STALE_S else None
    age = now - float(info.get("heartbeat", mtime))
    if age > STALE_S:
        return None
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        if info["pid"] == os.getpid() or not _pid_alive(info["pid"]):
            return None  # this host's process is gone (or it is this very process, done with it)
    return info | {"age_s": age}


def describe(info: dict) -> str:
    return (f"being trained by {info.get('host')}:{info.get('pid')} (lease heartbeat {info['age_s']:.0f} s ago; "
            f"a lease goes stale after {STALE_S:.0f} s without one)")


@dataclass
class Lease:
    path: Path
    token: str
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def _content(self, started: float, run_id: str) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id,
                           "token": self.token, "started": started, "heartbeat": time.time()})

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        info = read(self.path)
        if isinstance(info, dict) and info.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _write_new(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask applies
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


def acquire(run_dir: Path, run_id: str) -> Lease | None:
    """Take the lease on ``run_dir``; None when a live process holds it."""
    path = Path(run_dir) / LEASE_NAME
    lease = Lease(path, uuid.uuid4().hex, threading.Event())
    started = time.time()
    for _ in range(3):
        if _write_new(path, lease._content(started, run_id)):
            break
        if holder(run_dir) is not None:
            return None
        # Stale: move it aside (only one of several takers' renames finds it), then race for O_EXCL.
        aside = path.with_name(f".{LEASE_NAME}.{lease.token}.stale")
        try:
            os.rename(path, aside)
            aside.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    else:
        return None

    def beat():
        while not lease._stop.wait(HEARTBEAT_S):
            tmp = path.with_name(f".{LEASE_NAME}.{lease.token}.tmp")
            try:
                info = read(path)
                if not (isinstance(info, dict) and info.get("token") == lease.token):
                    return  # taken over (we were presumed dead): do not overwrite the new holder
                tmp.write_text(lease._content(started, run_id))
                follow_umask(tmp)
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)  # a missed beat; the next one may succeed
    lease._thread = threading.Thread(target=beat, name=f"apbench-lease-{run_id}", daemon=True)
    lease._thread.start()
    return lease
