"""Optimizer with one parameter group per method group; cosine or multi-step schedule with linear warm-up."""
from __future__ import annotations

import bisect
import math

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "multistep", "constant")
LR_SCALINGS = ("none", "linear")   # linear: every group's lr x batch_size / 256 (VPT, AdaptFormer)
LR_BATCH_REF = 256


def lr_factor(scaling: str, batch_size: int) -> float:
    """The batch-size rule: ``linear`` multiplies every lr by batch/256, as VPT and AdaptFormer state theirs."""
    if scaling not in LR_SCALINGS:
        raise ValueError(f"trainer.lr_scaling {scaling!r} unknown; choose one of {LR_SCALINGS}")
    return batch_size / LR_BATCH_REF if scaling == "linear" else 1.0


def group_lrs(groups, lr: float, head_lr: float | None = None, lr_scale: dict | None = None,
              factor: float = 1.0) -> dict[str, float]:
    """Each group's starting lr: ``head`` at ``head_lr`` (None: ``lr``), every other group at ``lr``;
    then ``lr_scale[group]`` and the batch-size ``factor`` multiply it."""
    lr_scale = dict(lr_scale or {})
    unknown = set(lr_scale) - set(groups)
    if unknown:
        raise ValueError(f"lr_scale names group(s) {sorted(unknown)} the method does not have; groups: {sorted(groups)}")
    base = {g: (head_lr if g == "head" and head_lr is not None else lr) for g in groups}
    return {g: float(base[g]) * float(lr_scale.get(g, 1.0)) * factor for g in groups}


def make_optimizer(param_groups: dict, name: str, lr: float, weight_decay: float, momentum: float = 0.9,
                   lr_scale: dict | None = None, head_lr: float | None = None,
                   factor: float = 1.0) -> torch.optim.Optimizer:
    """``param_groups``: group name -> parameters; lrs per group as :func:`group_lrs`."""
    lrs = group_lrs(param_groups, lr, head_lr, lr_scale, factor)
    groups = [{"params": ps, "lr": lrs[g], "name": g} for g, ps in param_groups.items() if ps]
    if not groups:
        raise ValueError("nothing to train: the method left no trainable parameters")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"trainer.optimizer {name!r} unknown; choose one of {OPTIMIZERS}")


def _warmup(step: int, warmup_steps: int) -> float | None:
    return (step + 1) / warmup_steps if step < warmup_steps else None


def cosine_with_warmup(optimizer, total_steps: int, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        w = _warmup(step, warmup_steps)
        if w is not None:
            return w
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def multistep_with_warmup(optimizer, total_steps: int, warmup_steps: int, milestones, gamma: float):
    """lr x gamma^k after the k-th milestone; ``milestones`` are fractions of the whole schedule (ILM-VP:
    0.5 and 0.72), so they stay at the same place when fewer epochs are trained than the reference."""
    bounds = sorted(int(round(float(m) * total_steps)) for m in milestones)

    def factor(step: int) -> float:
        w = _warmup(step, warmup_steps)
        return w if w is not None else gamma ** bisect.bisect_right(bounds, step)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_scheduler(optimizer, name: str, total_steps: int, warmup_steps: int, milestones=(), gamma: float = 0.1):
    if name == "cosine":
        return cosine_with_warmup(optimizer, total_steps, warmup_steps)
    if name == "multistep":
        return multistep_with_warmup(optimizer, total_steps, warmup_steps, milestones, gamma)
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"trainer.scheduler {name!r} unknown; choose one of {SCHEDULERS}")
