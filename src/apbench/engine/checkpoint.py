"""Epoch checkpoints for resuming a killed run: trainable state only, written atomically.

A checkpoint is written to a temporary name and renamed, so a run killed while writing leaves
either the previous complete checkpoint or none; it is deleted once the run's record is written.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn


def trainable_state(model: nn.Module, with_buffers: bool) -> dict[str, torch.Tensor]:
    state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    if with_buffers:  # BN statistics change only when the model trains in train mode
        state.update({n: b.detach().clone() for n, b in model.named_buffers()})
    return state


def save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_KEYS = ("model", "optimizer", "scheduler", "rng", "history", "epoch")


def load(path: Path) -> dict | None:
    """The checkpoint at ``path``, or None when there is none or it is unusable (then it is ignored and
    training starts from scratch: a lost epoch is cheaper than a result built on a broken state).

    Only the final name is ever read; ``.checkpoint.pt.*.tmp`` files are unfinished writes."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # data only: no pickled code runs
        missing = [k for k in _KEYS if k not in state] if isinstance(state, dict) else list(_KEYS)
        if missing:
            raise ValueError(f"not a training checkpoint (missing {', '.join(missing)})")
        if not isinstance(state["epoch"], int) or len(state["history"]) != state["epoch"]:
            raise ValueError(f"epoch {state['epoch']!r} disagrees with {len(state['history'])} epochs of history")
    except Exception as e:
        print(f"[apbench] ignoring unusable checkpoint {path} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
              "training from scratch", file=sys.stderr)
        return None
    return state
