"""Shared pieces of every measurement: module modes, state restore, optimizer, AMP, one train step.

A measurement must not change the model it measures: it runs real optimizer steps (optimizer state,
throughput), so the trainable parameters, buffers, gradients and train/eval flags are restored afterwards.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, except norms with running statistics whose own parameters are all frozen.

    Those stay in eval mode: a frozen BatchNorm must normalise with its pretrained statistics and never
    update them, otherwise "frozen" backbones drift and results depend on the batch composition.
    A model prepared by an apbench method carries its declared ``apbench_bn_mode``, which wins:
    ``eval`` runs the whole model in eval mode (as training does), ``train_stats`` all in train mode.
    """
    declared = getattr(model, "apbench_bn_mode", None)
    if declared in ("eval", "train_stats"):
        return model.train(declared == "train_stats")
    model.train()
    for m in model.modules():
        if isinstance(m, _NormBase) and m.track_running_stats:
            if not any(p.requires_grad for p in m.parameters(recurse=False)):
                m.eval()
    return model


@contextlib.contextmanager
def modes_restored(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every module's ``training`` flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def state_restored(model: nn.Module) -> Iterator[nn.Module]:
    """Restore trainable parameters, buffers, ``.grad`` and module modes after a measurement.

    Snapshots go to host memory so that they do not count in a CUDA peak taken inside the block.
    """
    trainable = [p for p in unique_parameters(model) if p.requires_grad]
    buffers = list(model.buffers())
    saved_params = [p.detach().to("cpu", copy=True) for p in trainable]
    saved_grads = [p.grad for p in trainable]
    saved_buffers = [b.detach().to("cpu", copy=True) for b in buffers]
    with modes_restored(model):
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, v, g in zip(trainable, saved_params, saved_grads):
                    p.copy_(v)
                    p.grad = g
                for b, v in zip(buffers, saved_buffers):
                    b.copy_(v)


def unique_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters, each shared (tied) tensor once: ``parameters()`` yields a tied Parameter once."""
    return list(model.parameters())


def model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels, so wall clock measures work done rather than work launched."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def normalize_precision(precision: str | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``; the trainer's ``amp: none`` means fp32."""
    precision = "fp32" if precision in (None, "none") else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    return precision


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    dtype = PRECISIONS[normalize_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def grad_scaler(device: torch.device | str, precision: str) -> torch.amp.GradScaler | None:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
    if normalize_precision(precision) != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def build_optimizer(name: str, params: Iterable[torch.Tensor], lr: float = 1e-3,
                    **kwargs) -> torch.optim.Optimizer:
    """The optimizers the benchmark uses: ``sgd`` (momentum 0.9 unless given), ``adam``, ``adamw``."""
    key = name.lower()
    params = list(params)
    if key == "sgd":
        kwargs.setdefault("momentum", 0.9)
        return torch.optim.SGD(params, lr=lr, **kwargs)
    if key == "adam":
        return torch.optim.Adam(params, lr=lr, **kwargs)
    if key == "adamw":
        return torch.optim.AdamW(params, lr=lr, **kwargs)
    raise ValueError(f"unknown optimizer {name!r}; expected sgd, adam or adamw")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer | None, inputs: torch.Tensor,
               targets: torch.Tensor, loss_fn: Callable, precision: str = "fp32",
               scaler: torch.amp.GradScaler | None = None) -> None:
    """One forward, backward and optimizer step (the unit every training figure is taken over)."""
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    with autocast(inputs.device, precision):
        loss = loss_fn(model(inputs), targets)
    if not loss.requires_grad:  # nothing trainable: the step is a forward pass
        return
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if optimizer is not None:
            optimizer.step()


def output_width(model: nn.Module, x: torch.Tensor) -> int:
    """Number of classes the model predicts, from one eval forward of one image."""
    with modes_restored(model), torch.no_grad():
        return model.eval()(x[:1]).shape[-1]
