"""Epoch checkpoints for resuming a killed run: trainable state only, written atomically.

A checkpoint is written to a temporary name and renamed, so a run killed while writing leaves
either the previous complete checkpoint or none; it is deleted once the run's record is written.
It carries the run's identity digest (``apbench.identity``: config digest plus input digests): a
checkpoint of another run, or of this run's config before its inputs changed, or one written before
checkpoints carried an identity, is ignored with a warning and removed.
"""
from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..filemode import follow_umask
from ..termination import deferred


def trainable_state(model: nn.Module, with_buffers: bool) -> dict[str, torch.Tensor]:
    state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    if with_buffers:  # BN statistics change only when the model trains in train mode
        state.update({n: b.detach().clone() for n, b in model.named_buffers()})
    return state


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over the file-size limit


class CheckpointWriteError(OSError):
    """The disk is full (or a quota or file-size limit is reached): the checkpoint could not be written."""


def save(path: Path, payload: dict) -> None:
    with deferred():  # a SIGTERM now waits for this write: the newest checkpoint is the one left behind
        try:
            _save(path, payload)
        except (OSError, RuntimeError) as e:
            full = _full_disk(e)
            if full is None:
                raise
            raise CheckpointWriteError(full.errno, f"disk full: could not write the checkpoint {path} "
                                                   f"({full.strerror}); free space, raise the quota or file-size "
                                                   "limit (ulimit -f), or point paths.results_dir at another disk, "
                                                   "then rerun: the run resumes from its last checkpoint") from e


def _full_disk(e: BaseException) -> OSError | None:
    """The out-of-space ``OSError`` behind ``e``: torch's zip writer reports it as a RuntimeError whose
    context is the OSError our file object raised."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in FULL:
            return e
        e = e.__cause__ or e.__context__
    return None


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        follow_umask(fd)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:  # our file object: a full disk raises an OSError with its errno
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_KEYS = ("model", "optimizer", "scheduler", "rng", "history", "epoch")


def load(path: Path, identity: str | None = None) -> dict | None:
    """The checkpoint at ``path``, or None when there is none or it is unusable (then it is ignored and
    training starts from scratch: a lost epoch is cheaper than a result built on a broken state).

    ``identity``: this run's identity digest; a checkpoint that does not carry the same one belongs to
    another run (copied, or its inputs changed since): it is ignored and removed, so it is never tried
    again. Only the final name is ever read; ``.checkpoint.pt.*.tmp`` files are unfinished writes."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # data only: no pickled code runs
        missing = [k for k in _KEYS if k not in state] if isinstance(state, dict) else list(_KEYS)
        if missing:
            raise ValueError(f"not a training checkpoint (missing {', '.join(missing)})")
        if not isinstance(state["epoch"], int) or len(state["history"]) != state["epoch"]:
            raise ValueError(f"epoch {state['epoch']!r} disagrees with {len(state['history'])} epochs of history")
        if identity is not None and state.get("identity") != identity:
            print(f"[apbench] ignoring checkpoint {path}: it belongs to another run (identity "
                  f"{state.get('identity') or 'not recorded'}, this run {identity}: another config, or this "
                  "run's weights or data changed since); removed it, training from scratch", file=sys.stderr)
            path.unlink(missing_ok=True)
            return None
    except Exception as e:
        print(f"[apbench] ignoring unusable checkpoint {path} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
              "training from scratch", file=sys.stderr)
        return None
    return state
