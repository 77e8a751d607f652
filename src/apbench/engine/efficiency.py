"""Efficiency measures of one run, the same way for every method (see docs/efficiency.md).

Works on any ``nn.Module``; nothing here knows about methods, datasets or apbench models.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .step import build_optimizer, normalize_precision, output_width, train_mode
from .memory import saved_activation_bytes, saved_bytes_by_module, training_memory
from .params import count_params
from .speed import StepTimer, height_width, flops, inference_throughput, train_step_throughput

__all__ = ["count_params", "saved_activation_bytes", "saved_bytes_by_module", "training_memory",
           "inference_throughput", "train_step_throughput", "flops", "StepTimer", "measure_all",
           "train_mode", "build_optimizer"]


def measure_all(model: nn.Module, head_prefixes: Sequence[str], inserted: int,
                image_size: int | Sequence[int], device: torch.device | str, optimizer_name: str,
                batch_size: int, precision: str = "fp32", *, in_chans: int = 3,
                num_classes: int | None = None, warmup: int = 10, iters: int = 40,
                timer: StepTimer | None = None, effective: int | None = None) -> dict:
    """``{"params": ..., "efficiency": ...}``, both flat, as the run record stores them.

    Memory and throughput use a synthetic batch of ``batch_size`` random images and labels, so every
    method is measured on identical work. The loop's timings come from ``timer`` (None without one).
    ``effective`` is passed through for methods that define it. The model is left unchanged.
    """
    device = torch.device(device)
    precision = normalize_precision(precision)
    model.to(device)
    params = count_params(model, head_prefixes, inserted)
    params["effective"] = effective

    x = torch.randn(batch_size, in_chans, *height_width(image_size), device=device)
    if num_classes is None:
        num_classes = output_width(model, x)
    y = torch.randint(num_classes, (batch_size,), device=device)
    memory = training_memory(model, x, y, nn.functional.cross_entropy, optimizer_name, precision)
    common = dict(batch_size=batch_size, image_size=image_size, device=device, precision=precision,
                  warmup=warmup, iters=iters, in_chans=in_chans)
    train = train_step_throughput(model, None, optimizer_name=optimizer_name,
                                  num_classes=num_classes, **common)
    infer = inference_throughput(model, **common)

    timing = timer.as_dict() if timer is not None else dict.fromkeys(StepTimer().as_dict())
    efficiency = {
        **timing,
        "saved_activation_bytes": memory["saved_activation_bytes"],
        "memory_bytes": memory["memory_bytes"],
        "param_bytes": memory["param_bytes"],
        "grad_bytes": memory["grad_bytes"],
        "optimizer_state_bytes": memory["optimizer_state_bytes"],
        "cuda_peak_bytes": memory["cuda_peak_bytes"],
        "train_throughput": train["img_per_s"],
        "infer_throughput": infer["img_per_s"],
        "flops_infer": flops(model, image_size, train=False, in_chans=in_chans),
        "flops_train": flops(model, image_size, train=True, in_chans=in_chans),
        "batch_size": batch_size,
        "image_size": train["image_size"],
        "precision": precision,
        "optimizer": optimizer_name,
    }
    return {"params": params, "efficiency": efficiency}
