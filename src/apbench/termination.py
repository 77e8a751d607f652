"""SIGTERM while a run trains: what SLURM (and most schedulers) send before pre-empting or requeueing a job.

While a run holds its lease, SIGTERM raises :class:`Terminated` (a ``SystemExit`` with status 143, as a
shell reports a process ended by SIGTERM) in the main thread. It unwinds the run like Ctrl-C: no record is
written, the last epoch checkpoint stays, the lease is released, and the process exits non-zero so a
launcher requeues it -- a requeued job on another node then resumes at once instead of finding a live
lease for ``lease.STALE_S``. A signal that arrives while a checkpoint is being written is held until the
write is complete (:func:`deferred`), so the checkpoint left behind is the newest one.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

EXIT_STATUS = 128 + signal.SIGTERM


class Terminated(SystemExit):
    """The process received SIGTERM during a run."""

    def __init__(self):
        super().__init__(EXIT_STATUS)


_state = threading.local()


def _handler(signum, frame):
    if getattr(_state, "deferring", 0):
        _state.pending = True
        return
    raise Terminated()


@contextmanager
def exits_on_sigterm():
    """SIGTERM raises :class:`Terminated` inside this block (main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred():
    """Hold a SIGTERM that arrives inside this block until it ends (a checkpoint write completes)."""
    _state.deferring = getattr(_state, "deferring", 0) + 1
    try:
        yield
    finally:
        _state.deferring -= 1
        if not _state.deferring and getattr(_state, "pending", False):
            _state.pending = False
            raise Terminated()
