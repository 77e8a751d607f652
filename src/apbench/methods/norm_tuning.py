"""Normalization tuning: only the affine parameters (gamma, beta) of chosen norm layers train.

BatchNorm running statistics stay frozen (``bn_mode="eval"``): the model normalizes with the
source statistics and learns only the scale and shift, which is what makes this a cheap adaptation
of a frozen backbone (and, per channel, the same family of changes as a channel AP next to the norm).

``layers`` picks where: ``null`` (default) = every norm layer of the model (stem, blocks, final
norm); otherwise the usual layer spec, each point contributing the norm layers inside it (point 0 =
the whole stem, block points = the block, module paths = that module).
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.layers import Point, unwrap, block_points, register_point_hook, resolve_layers
from .base import Adapted, MethodError, freeze_all_but, register_method

KINDS = {
    "batchnorm": nn.modules.batchnorm._BatchNorm,  # includes timm's BatchNormAct2d
    "layernorm": nn.LayerNorm,                     # includes timm's LayerNorm and LayerNorm2d
    "groupnorm": nn.GroupNorm,
}


def stem_modules(model: nn.Module) -> list[nn.Module]:
    """The top-level children before the first block's container: what point 0 stands for."""
    model = unwrap(model)
    first_block = block_points(model)[1].module_path.split(".")[0]
    out = []
    for name, child in model.named_children():
        if name == first_block:
            break
        out.append(child)
    return out


def modules_at(model: nn.Module, point: Point) -> list[nn.Module]:
    if point.kind == "input":
        raise MethodError("point 'input' holds no layers to tune; give blocks, e.g. layers=[1-4]")
    if point.kind == "stem":
        return stem_modules(model)
    return [point.module(unwrap(model))]


WHERE = ("block", "after")


@torch.no_grad()
def norm_after(model: nn.Module, point: Point, types: tuple, input_size) -> nn.Module:
    """The first norm layer of ``types`` whose forward starts after ``point``'s activation is produced
    (read from one forward pass at batch 1, so it follows the model's real order, not its attribute order)."""
    events: list = []
    norms = [m for m in unwrap(model).modules() if isinstance(m, types)]
    handles = [m.register_forward_pre_hook(lambda mod, args: events.append(mod)) for m in norms]
    handles.append(register_point_hook(model, point, lambda t: (events.append("point"), t)[1]))
    was_training = model.training
    model.eval()
    try:
        ref = next(model.parameters())
        model(torch.zeros(1, *input_size, device=ref.device, dtype=ref.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    start = events.index("point") + 1 if "point" in events else 0
    after = [e for e in events[start:] if e != "point"]
    if not after:
        raise MethodError(f"no norm layer runs after point {point.key} in {type(unwrap(model)).__name__}; "
                          "use where=block (the norm layers inside the block) or an earlier point")
    return after[0]


def norm_layers(model: nn.Module, layers, kinds, where: str = "block", input_size=None) -> list[nn.Module]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise MethodError(f"norm kinds {unknown or kinds} invalid; choose from {sorted(KINDS)}")
    if where not in WHERE:
        raise MethodError(f"norm_tuning where={where!r} unknown; choose one of {WHERE}")
    types = tuple(KINDS[k] for k in kinds)
    if where == "after":
        if layers is None:
            raise MethodError("norm_tuning where=after needs layers (the points to put a norm after), e.g. [4]")
        found = []
        for p in resolve_layers(model, layers):
            m = norm_after(model, p, types, input_size)
            if all(m is not f for f in found):
                found.append(m)
        return found
    if layers is None:
        roots = [unwrap(model)]
    else:
        roots = [m for p in resolve_layers(model, layers) for m in modules_at(model, p)]
    found, seen = [], set()
    for root in roots:
        for m in root.modules():
            if isinstance(m, types) and id(m) not in seen:
                seen.add(id(m))
                found.append(m)
    return found


@register_method("norm_tuning")
def norm_tuning(model, head_prefixes, input_size, layers=None, kinds=("batchnorm", "layernorm", "groupnorm"),
                where="block"):
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    head = freeze_all_but(model, head_prefixes)
    norms = norm_layers(model, layers, kinds, where, input_size)
    params = [p for m in norms for p in m.parameters(recurse=False)]  # weight and bias when affine
    if not params:
        raise MethodError(f"no affine {'/'.join(kinds)} layers in {type(unwrap(model)).__name__} at layers={layers}")
    head_ids = {id(p) for p in head}
    params = [p for p in params if id(p) not in head_ids]
    for p in params:
        p.requires_grad_(True)
    return Adapted(model, "norm_tuning", {"norm": params, "head": head}, bn_mode="eval",
                   points=resolve_layers(model, layers) if layers is not None else [],
                   info={"kinds": kinds, "norm_layers": len(norms), "where": where}
                   | ({"norm_modules": [n for n, m in unwrap(model).named_modules() if any(m is x for x in norms)]}
                      if where == "after" else {}))
