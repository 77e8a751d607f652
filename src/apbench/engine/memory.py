"""Training memory that does not depend on the device: saved activations + params + grads + state.

Saved activations are the tensors autograd keeps for backward in one training forward pass, seen
through ``torch.autograd.graph.saved_tensors_hooks``. They are counted by storage, once each (a view
or a tensor saved by two ops holds no extra memory), and storages of the model's own parameters and
buffers are left out (a frozen conv keeps its weight for the input gradient, but that weight is
resident anyway and is counted in ``param_bytes``). Autograd records nothing before the first tensor
that requires a gradient, so a frozen prefix contributes zero by construction, not by estimate.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from .step import (autocast, build_optimizer, grad_scaler, model_device, state_restored,
                    synchronize, train_mode, train_step, unique_parameters)

OUTSIDE = "<outside>"  # tensors saved outside the model: by the loss, usually


def _storage(t: torch.Tensor) -> tuple[object, int]:
    """(key, bytes) of the memory block behind ``t``."""
    try:
        s = t.untyped_storage()
        return (s.device, s.data_ptr()), s.nbytes()
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage (subclasses)
        return ("id", id(t)), t.numel() * t.element_size()


@contextlib.contextmanager
def _module_stack(model: nn.Module, stack: list[str]):
    """Keep ``stack[-1]`` = name of the innermost module now running its forward."""
    def enter(name):
        def hook(module, args):
            stack.append(name)  # returns None: the input is left as it is
        return hook

    def leave(module, args, output):
        stack.pop()  # returns None: the output is left as it is

    handles = []
    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(enter(name)))
        # always_call: pop even when forward raises, so the stack stays balanced
        handles.append(m.register_forward_hook(leave, always_call=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _saved_by_module(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     loss_fn: Callable, precision: str) -> dict[str, int]:
    """Bytes of new storages saved for backward, credited to the module that saved them first."""
    device = model_device(model)
    inputs, targets = inputs.to(device), targets.to(device)
    resident = {_storage(t)[0] for t in (*model.parameters(), *model.buffers())}
    seen: set = set()
    per_module: dict[str, int] = {}
    stack = [OUTSIDE]

    def pack(t: torch.Tensor) -> torch.Tensor:
        key, nbytes = _storage(t)
        if key not in resident and key not in seen and nbytes:
            seen.add(key)
            per_module[stack[-1]] = per_module.get(stack[-1], 0) + nbytes
        return t  # keep the tensor itself: the storage stays alive, so its address is not reused

    with state_restored(model), _module_stack(model, stack), torch.enable_grad():
        train_mode(model)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with autocast(device, precision):
                loss = loss_fn(model(inputs), targets)
        del loss  # frees the graph without a backward pass
    return per_module


def saved_activation_bytes(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                           loss_fn: Callable, precision: str = "fp32") -> int:
    """Bytes saved for backward by one training forward pass (model left unchanged).

    Under bf16/fp16 autocast the low-precision copies of frozen weights that an op keeps are counted:
    they are real memory that exists only because of the backward pass.
    """
    return sum(_saved_by_module(model, inputs, targets, loss_fn, precision).values())


def saved_bytes_by_module(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                          loss_fn: Callable, precision: str = "fp32") -> dict[str, int]:
    """Same bytes, keyed by the innermost module that saved them.

    ``"<outside>"`` is the loss; ``""`` the root module's own code.

    Shows where the memory of a method sits, e.g. that nothing before an activation prompt saves.
    """
    return _saved_by_module(model, inputs, targets, loss_fn, precision)


def _state_bytes(optimizer: torch.optim.Optimizer) -> int:
    # Per-element state (momentum, exp_avg, exp_avg_sq) only: 0-dim bookkeeping such as Adam's
    # "step" is a few bytes per tensor and not what the comparison is about.
    seen, total = set(), 0
    for state in optimizer.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                key, nbytes = _storage(v)
                if key not in seen:
                    seen.add(key)
                    total += nbytes
    return total


def training_memory(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                    loss_fn: Callable, optimizer_name: str, precision: str = "fp32") -> dict:
    """``saved_activation_bytes``, ``param_bytes``, ``grad_bytes``, ``optimizer_state_bytes``,
    ``memory_bytes`` (their sum) and ``cuda_peak_bytes`` (None off CUDA).

    Optimizer state is read from a real optimizer after a real step; the model is restored afterwards.
    ``cuda_peak_bytes`` is ``max_memory_allocated`` over the second of two steps, so the optimizer
    state already exists as it does in steady training; it counts everything on the device.
    """
    device = model_device(model)
    inputs, targets = inputs.to(device), targets.to(device)
    params = unique_parameters(model)
    trainable = [p for p in params if p.requires_grad]
    out = {
        "saved_activation_bytes": saved_activation_bytes(model, inputs, targets, loss_fn, precision),
        "param_bytes": sum(p.numel() * p.element_size() for p in params),
        "grad_bytes": sum(p.numel() * p.element_size() for p in trainable),
        "optimizer_state_bytes": 0,
        "cuda_peak_bytes": None,
    }
    if trainable or device.type == "cuda":
        with state_restored(model):
            train_mode(model)
            opt = build_optimizer(optimizer_name, trainable) if trainable else None
            scaler = grad_scaler(device, precision)
            train_step(model, opt, inputs, targets, loss_fn, precision, scaler)
            if opt is not None:
                out["optimizer_state_bytes"] = _state_bytes(opt)
            if device.type == "cuda":
                synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                train_step(model, opt, inputs, targets, loss_fn, precision, scaler)
                synchronize(device)
                out["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
            del opt
    out["memory_bytes"] = (out["saved_activation_bytes"] + out["param_bytes"] + out["grad_bytes"]
                           + out["optimizer_state_bytes"])
    return out
