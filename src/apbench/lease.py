"""A lease file per run: the process training a run says so, so that another launch skips it.

Results folders live on NFS or Lustre on clusters, where ``flock`` is unreliable; a lease uses only
what those file systems do atomically: ``open(O_CREAT | O_EXCL)`` (NFSv3 and later, Lustre) and
``rename``. ``<run folder>/lease.json`` holds {host, pid, run_id, token, started, heartbeat}; the
holder rewrites it every ``HEARTBEAT_S`` seconds and removes it when the run ends, however it ends
(SIGTERM included: ``apbench.termination``).

**Age.** A lease's age is ``now - heartbeat`` when its heartbeat is a real number not ahead of this
host's clock. Every other lease -- unreadable, not JSON, not a JSON object, a heartbeat of the wrong
type, NaN or in the future, or ``lease.json`` not a regular file (a folder, a link) -- is aged by the
file's own modification time. One rule, so no lease is live forever and none is read with a traceback.

**Stale.** A lease is stale, and another launch takes it over (a killed run is then resumed from its
checkpoint), when either
* its age is over ``STALE_S`` (300 s: ten missed heartbeats; compared with this host's clock, so hosts'
  clocks must agree to within minutes, as NTP keeps them), or
* it is a well-formed lease written on this host by a process that no longer exists (known at once).

**Take-over.** Several launchers may find the same stale lease at once. Each names that very file
version by a key (digest of its bytes, inode, size and modification time) and races to create the
take-over token ``.lease.json.takeover.<key>.0`` with ``O_EXCL``: exactly one wins. The winner looks
again (the file must still be the version it judged stale), renames it aside and creates its own lease
with ``O_EXCL``; the losers look again and find a live lease. A token left by a taker that died inside
its take-over (milliseconds) is itself stale after ``STALE_S``; the next token ``.1`` is then raced for.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import stat
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .filemode import follow_umask

LEASE_NAME = "lease.json"
HEARTBEAT_S = 30.0
STALE_S = float(os.environ.get("APBENCH_LEASE_STALE_S", 300.0))
_MAX_READ = 1 << 16  # a lease is ~200 bytes: never read a huge file whole


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def read(path: Path) -> dict | None:
    """The lease at ``path`` when it is a readable JSON object, else None."""
    try:
        with open(path, "rb") as f:
            info = json.loads(f.read(_MAX_READ))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


@dataclass(frozen=True)
class Look:
    """One look at a lease file: which version it is, what it says and how old it is."""
    key: str
    info: dict | None   # the lease, when well formed
    problem: str | None  # why it is aged by its file (None: by its heartbeat)
    age_s: float

    @property
    def live(self) -> bool:
        if self.age_s > STALE_S:
            return False
        info = self.info
        if info is not None and info.get("host") == socket.gethostname() and _is_pid(info.get("pid")):
            if info["pid"] == os.getpid() or not _pid_alive(info["pid"]):
                return False  # this host's process is gone (or it is this very process, done with it)
        return True


def _is_pid(value) -> bool:
    return type(value) is int and 0 < value < 2 ** 31  # 0 and negatives would address process groups


def _heartbeat(info: dict, now: float) -> float | None:
    beat = info.get("heartbeat")
    if type(beat) not in (int, float):  # bool is an int subclass, and no heartbeat
        return None
    try:
        beat = float(beat)
    except OverflowError:  # an integer beyond any float
        return None
    return beat if math.isfinite(beat) and beat <= now else None


def look(path: Path) -> Look | None:
    """What ``path`` holds now; None when there is no lease file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    raw, problem = b"", None
    if not stat.S_ISREG(st.st_mode):
        problem = "not a regular file"
    else:
        try:
            with open(path, "rb") as f:
                raw = f.read(_MAX_READ)
        except OSError as e:
            problem = f"unreadable ({e.strerror or e})"
    now = time.time()
    info = None
    if problem is None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            problem = "not a lease (no JSON object)"
        elif (beat := _heartbeat(parsed, now)) is None:
            problem = f"a lease with an unusable heartbeat ({parsed.get('heartbeat')!r:.40})"
        else:
            info = parsed
    age = now - beat if info is not None else now - st.st_mtime
    key = hashlib.sha256(raw + f"|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    return Look(key, info, problem, age)


def holder(run_dir: Path) -> dict | None:
    """The live lease on ``run_dir`` (its content, with ``age_s`` and, for a lease aged by its file,
    ``problem``), or None when free or stale."""
    seen = look(Path(run_dir) / LEASE_NAME)
    if seen is None or not seen.live:
        return None
    if seen.info is None:
        return {"host": "?", "pid": "?", "age_s": seen.age_s, "problem": seen.problem}
    return seen.info | {"age_s": seen.age_s}


def describe(info: dict) -> str:
    if info.get("problem"):
        return (f"held by a lease file that is {info['problem']}, written {info['age_s']:.0f} s ago (such a "
                f"lease counts as held until its file is {STALE_S:.0f} s old; delete it if no process trains "
                "this run)")
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


def _older_than_stale(path: Path) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > STALE_S
    except FileNotFoundError:
        return False


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def take_over(path: Path, seen: Look, text: str, token: str) -> bool:
    """Replace the stale lease version ``seen`` by ``text``; False when another taker got there first."""
    for generation in range(100):
        claim = path.with_name(f".{LEASE_NAME}.takeover.{seen.key}.{generation}")
        if _write_new(claim, token):
            break
        if not _older_than_stale(claim):
            return False  # another taker is replacing this very version now
    else:
        return False
    try:
        again = look(path)
        if again is None or again.key != seen.key:
            return False  # it changed since we judged it (released, or already taken over)
        aside = path.with_name(f".{LEASE_NAME}.{token}.stale")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False  # released in between
        _discard(aside)
        return _write_new(path, text)  # False: a fresh launcher created one in between; it holds
    finally:
        for left in path.parent.glob(f".{LEASE_NAME}.takeover.{seen.key}.*"):  # ours, and any dead taker's
            left.unlink(missing_ok=True)


def acquire(run_dir: Path, run_id: str) -> Lease | None:
    """Take the lease on ``run_dir``; None when a live process holds it."""
    path = Path(run_dir) / LEASE_NAME
    lease = Lease(path, uuid.uuid4().hex, threading.Event())
    started = time.time()
    for attempt in range(20):
        text = lease._content(started, run_id)
        if _write_new(path, text):
            break
        seen = look(path)
        if seen is None:
            continue  # released in between: race for it again
        if seen.live:
            return None
        if take_over(path, seen, text, lease.token):
            break
        time.sleep(0.01 * (attempt + 1))  # another taker is at work: its lease shows up in a moment
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
