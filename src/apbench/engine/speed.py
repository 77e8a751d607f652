"""Throughput (timm-benchmark style), FLOPs at batch 1, and a step/epoch timer for the training loop.

All wall-clock figures use ``time.perf_counter`` after a device synchronize: CUDA kernels run
asynchronously, and an unsynchronized clock measures how fast work is queued, not done.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .step import (autocast, build_optimizer, grad_scaler, model_device, modes_restored,
                    normalize_precision, output_width, state_restored, synchronize, train_mode,
                    train_step)

ImageSize = int | Sequence[int]


def height_width(image_size: ImageSize) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size[-2:]
    return int(h), int(w)


def _batch(batch_size: int, image_size: ImageSize, in_chans: int, device) -> torch.Tensor:
    return torch.randn(batch_size, in_chans, *height_width(image_size), device=device)


def _record(seconds: float, batch_size: int, image_size: ImageSize, precision: str,
            warmup: int, iters: int) -> dict:
    step = seconds / iters
    return {"img_per_s": batch_size / step, "step_time_s": step, "batch_size": batch_size,
            "image_size": list(height_width(image_size)), "precision": precision,
            "warmup": warmup, "iters": iters}


def _timed(fn, device, warmup: int, iters: int) -> float:
    """Seconds for ``iters`` calls after ``warmup`` untimed ones (allocator, cuDNN autotune, caches)."""
    if iters < 1:
        raise ValueError("iters must be >= 1")
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return time.perf_counter() - start


def inference_throughput(model: nn.Module, batch_size: int, image_size: ImageSize,
                         device: torch.device | str, precision: str = "fp32", warmup: int = 10,
                         iters: int = 40, in_chans: int = 3, inputs: torch.Tensor | None = None) -> dict:
    """Images per second of eval-mode forward passes on one synthetic batch (model moved to device).

    ``inputs``: the batch to use instead of random images (e.g. prefix-cache activations).
    """
    device = torch.device(device)
    precision = normalize_precision(precision)
    model.to(device)
    x = inputs if inputs is not None else _batch(batch_size, image_size, in_chans, device)

    def step():
        with autocast(device, precision):
            model(x)

    with modes_restored(model), torch.inference_mode():
        model.eval()
        seconds = _timed(step, device, warmup, iters)
    return _record(seconds, batch_size, image_size, precision, warmup, iters)


def train_step_throughput(model: nn.Module, params: Iterable[torch.Tensor] | None,
                          batch_size: int, image_size: ImageSize, device: torch.device | str,
                          precision: str = "fp32", optimizer_name: str = "sgd", warmup: int = 10,
                          iters: int = 40, in_chans: int = 3, num_classes: int | None = None,
                          inputs: torch.Tensor | None = None) -> dict:
    """Images per second of forward + backward + optimizer step over ``params`` only.

    ``params`` defaults to every parameter with ``requires_grad``. Targets are random labels for a
    cross-entropy loss over the model's output width. The model is restored afterwards.
    ``inputs``: the batch to use instead of random images (e.g. prefix-cache activations).
    """
    device = torch.device(device)
    precision = normalize_precision(precision)
    model.to(device)
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    params = list(params)
    x = inputs if inputs is not None else _batch(batch_size, image_size, in_chans, device)
    with state_restored(model):
        train_mode(model)
        if num_classes is None:
            num_classes = output_width(model, x)
        y = torch.randint(num_classes, (batch_size,), device=device)
        opt = build_optimizer(optimizer_name, params) if params else None
        scaler = grad_scaler(device, precision)
        loss_fn = nn.functional.cross_entropy
        seconds = _timed(lambda: train_step(model, opt, x, y, loss_fn, precision, scaler),
                         device, warmup, iters)
        del opt
    return _record(seconds, batch_size, image_size, precision, warmup, iters)


def flops(model: nn.Module, image_size: ImageSize, train: bool, in_chans: int = 3) -> int:
    """FLOPs of one image (batch 1) counted by ``FlopCounterMode``: a multiply-add is 2 FLOPs.

    ``train=False``: one eval forward under ``no_grad``. ``train=True``: training-mode forward plus
    backward of the trainable set, so a frozen prefix costs its forward only, as it does in training.
    Only ops with a registered formula (matmul, conv, attention) count; elementwise ops do not.
    """
    x = _batch(1, image_size, in_chans, model_device(model))
    counter = FlopCounterMode(display=False)
    if not train:
        with modes_restored(model), torch.no_grad():
            model.eval()
            with counter:
                model(x)
        return counter.get_total_flops()
    with state_restored(model), torch.enable_grad():
        model.eval()  # FLOPs do not depend on the mode; batch-1 BatchNorm cannot run in train mode
        with counter:
            out = model(x)
            loss = out.float().sum()  # the loss itself has no counted FLOPs
            if loss.requires_grad:
                loss.backward()
    return counter.get_total_flops()


class StepTimer:
    """Synchronized step and epoch wall clock for a training loop, data-loading time apart.

    Call ``start_epoch()``, then per batch ``data_ready()`` once it arrived and ``step_done()`` after
    the optimizer step, then ``end_epoch()``. Or, equivalently::

        for epoch in range(epochs):
            with timer.epoch():
                for x, y in timer.iter(loader):
                    ...  # forward, backward, step

    A step's compute time runs from its batch being ready to ``step_done``; its data time is the wait
    before that since the previous step (or the epoch start). The device is synchronized at each
    boundary so queued kernels are charged to the step that launched them; that gives up some
    CPU/GPU overlap, the price of per-step figures that mean something.
    """

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.steps = 0
        self.compute_s = 0.0
        self.data_s = 0.0
        self.epoch_s: list[float] = []
        self._epoch_start = self._mark = self._step_start = None

    def _now(self) -> float:
        synchronize(self.device)
        return time.perf_counter()

    def start_epoch(self) -> None:
        self._epoch_start = self._mark = self._now()

    def mark(self) -> None:
        """Restart the data-wait clock: work done since the epoch started (label re-mapping) is epoch
        time, not data-loading time."""
        self._mark = self._now()

    def data_ready(self) -> None:
        now = time.perf_counter()  # the device is idle since the last boundary: no sync needed
        if self._mark is not None:
            self.data_s += now - self._mark
        self._step_start = now

    def step_done(self) -> None:
        now = self._now()
        if self._step_start is not None:
            self.compute_s += now - self._step_start
            self.steps += 1
        self._mark, self._step_start = now, None

    def end_epoch(self) -> None:
        if self._epoch_start is not None:
            self.epoch_s.append(self._now() - self._epoch_start)
        self._epoch_start = self._mark = self._step_start = None

    @contextlib.contextmanager
    def epoch(self) -> Iterator["StepTimer"]:
        self.start_epoch()
        try:
            yield self
        finally:
            self.end_epoch()

    def iter(self, loader: Iterable) -> Iterator:
        """Yield ``loader``'s batches, timing the wait for each and the work done with it."""
        if self._mark is None:  # used outside ``epoch()``: data wait starts now
            self._mark = self._now()
        for batch in loader:
            self.data_ready()
            try:
                yield batch
            finally:  # also when the loop breaks early: the step still happened
                self.step_done()

    @property
    def train_time_s(self) -> float | None:
        """Wall clock of all timed epochs."""
        return sum(self.epoch_s) if self.epoch_s else None

    @property
    def epoch_time_s(self) -> float | None:
        """Mean wall clock of an epoch."""
        return sum(self.epoch_s) / len(self.epoch_s) if self.epoch_s else None

    @property
    def step_time_s(self) -> float | None:
        """Mean compute time of a step (data wait excluded)."""
        return self.compute_s / self.steps if self.steps else None

    @property
    def data_time_s(self) -> float | None:
        """Mean wait for a batch, per step."""
        return self.data_s / self.steps if self.steps else None

    def as_dict(self) -> dict:
        return {"train_time_s": self.train_time_s, "epoch_time_s": self.epoch_time_s,
                "step_time_s": self.step_time_s, "data_time_s": self.data_time_s}
