"""Optimizer with one parameter group per method group, and cosine schedule with linear warm-up."""
from __future__ import annotations

import math

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")


def make_optimizer(param_groups: dict, name: str, lr: float, weight_decay: float, momentum: float = 0.9,
                   lr_scale: dict | None = None) -> torch.optim.Optimizer:
    """``param_groups``: group name -> parameters; ``lr_scale`` multiplies the base lr per group."""
    lr_scale = dict(lr_scale or {})
    unknown = set(lr_scale) - set(param_groups)
    if unknown:
        raise ValueError(f"lr_scale names group(s) {sorted(unknown)} the method does not have; groups: {sorted(param_groups)}")
    groups = [{"params": ps, "lr": lr * float(lr_scale.get(g, 1.0)), "name": g}
              for g, ps in param_groups.items() if ps]
    if not groups:
        raise ValueError("nothing to train: the method left no trainable parameters")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"trainer.optimizer {name!r} unknown; choose one of {OPTIMIZERS}")


def cosine_with_warmup(optimizer, total_steps: int, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
