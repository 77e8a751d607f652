"""Speed options of a run: channels-last memory format and ``torch.compile`` (AMP lives in the loop).

Both leave results unchanged up to float rounding; the record says which were on, and why compile
was not when it failed. Compile wraps the forward the model has *now* (the suffix while a prefix
cache is active), as an instance attribute, so parameter names, hooks and checkpoints stay as they
are and leaving the context restores the eager model.
"""
from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..models.layers import unwrap
from .step import model_device


def _trial_step(adapted, example: Dataset, amp: str) -> None:
    """One forward + backward on two examples, so a compile failure shows here, not mid-training."""
    from .loop import amp_context, loader

    device = model_device(adapted.model)
    x, y = next(iter(loader(example, 2, False, 0, 0)))
    x, y = x.to(device), y.to(device)
    params = adapted.trainable()
    saved = [p.grad for p in params]
    adapted.train()
    try:
        with amp_context(device, amp):
            loss = F.cross_entropy(adapted.logits(x), y)
        if loss.requires_grad:
            loss.backward()
    finally:
        for p, g in zip(params, saved):  # the trial leaves no gradient behind
            p.grad = g


@contextmanager
def applied(adapted, example: Dataset, *, channels_last: bool = False, compile: bool = False,
            amp: str = "none") -> Iterator[dict]:
    """Turn the options on for the block; yields what the record stores under ``speed_options``."""
    info = {"amp": amp, "channels_last": bool(channels_last), "compile": False, "compile_requested": bool(compile),
            "compile_warning": None, "compile_time_s": None}
    if channels_last:
        # Only 4-D weights change layout; convolutions then produce channels-last outputs themselves.
        adapted.model.to(memory_format=torch.channels_last)
    m = unwrap(adapted.model)
    had, old = "forward" in m.__dict__, m.__dict__.get("forward")
    if compile:
        t0 = time.perf_counter()
        try:
            m.forward = torch.compile(m.forward)
            _trial_step(adapted, example, amp)
            info["compile"] = True
        except Exception as e:  # inductor needs a compiler toolchain; not every hook traces
            _restore(m, had, old)
            info["compile_warning"] = f"torch.compile failed, running eager: {type(e).__name__}: {str(e)[:300]}"
            warnings.warn(info["compile_warning"], RuntimeWarning, stacklevel=2)
        info["compile_time_s"] = time.perf_counter() - t0
    try:
        yield info
    finally:
        if info["compile"]:
            _restore(m, had, old)


def _restore(m, had: bool, old) -> None:
    if had:
        m.forward = old
    else:
        m.__dict__.pop("forward", None)
