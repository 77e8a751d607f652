"""LoRA through peft: low-rank updates W + (alpha/r)·B·A of chosen Linear/Conv2d layers.

``layers`` picks the blocks (block k's output is point k), ``targets`` the layers inside them
(``qkv``, ``proj``, ``fc1``, ``fc2`` for ViT/Swin; ``conv`` = every ungrouped conv for CNNs; any
module-path suffix). peft initialises B to zero, so training starts from the frozen model. With
``merge: true`` the update is merged into the frozen weights for inference (see ``PeftAdapted``).
``targets: [q, v]`` (any of q, k, v) adapts those parts of a fused qkv Linear as separate targets, the
LoRA paper's setting, through ``qkv_lora`` (peft cannot target part of a module).
"""
from __future__ import annotations

from .base import MethodError, register_method
from .blocks import select_blocks
from . import qkv_lora
from .base import Adapted, freeze_all_but
from .peft_wrap import target_names, names_regex, wrap


@register_method("lora")
def lora(model, head_prefixes, layers="all", targets=None, r=8, alpha=16, dropout=0.0, merge=False):
    from peft import LoraConfig

    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise MethodError(f"lora r={r!r} must be a positive integer")
    points = select_blocks(model, layers, "lora", allow_modules=True)
    if targets and set(targets) <= set(qkv_lora.PARTS):
        return _qkv_parts(model, head_prefixes, points, list(targets), r, alpha, dropout, merge)
    names = target_names(model, points, targets, r=r)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=float(dropout), target_modules=names_regex(names))
    return wrap(model, config, head_prefixes, "lora", points, merge, "lora",
                info={"targets": names, "r": r, "alpha": alpha, "dropout": float(dropout)})


def _qkv_parts(model, head_prefixes, points, parts, r, alpha, dropout, merge):
    from ..models.layers import unwrap
    if merge:
        raise MethodError("lora targets q/k/v (parts of a fused qkv) cannot be merged; use method.merge=false")
    head = freeze_all_but(model, head_prefixes)
    inner = unwrap(model)
    inner.apbench_qkv_lora, handles, names = qkv_lora.attach(inner, points, parts, r, alpha, float(dropout))
    params = list(inner.apbench_qkv_lora.parameters())
    return Adapted(model, "lora", {"lora": params, "head": head}, inserted=sum(p.numel() for p in params),
                   points=points, handles=handles, train_modules=list(inner.apbench_qkv_lora.values()),
                   info={"targets": names, "r": r, "alpha": alpha, "dropout": float(dropout), "peft_type": None})
