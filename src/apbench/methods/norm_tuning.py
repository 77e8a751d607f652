"""Normalization tuning: only the affine parameters (gamma, beta) of chosen norm layers train.

BatchNorm running statistics stay frozen (``bn_mode="eval"``): the model normalizes with the
source statistics and learns only the scale and shift, which is what makes this a cheap adaptation
of a frozen backbone (and, per channel, the same family of changes as a channel AP next to the norm).

``layers`` picks where: ``null`` (default) = every norm layer of the model (stem, blocks, final
norm); otherwise the usual layer spec, each point contributing the norm layers inside it (point 0 =
the whole stem, block points = the block, module paths = that module).
"""
from __future__ import annotations

from torch import nn

from ..models.layers import FAMILIES, Point, _unwrap, block_points, resolve_layers
from .base import Adapted, MethodError, freeze_all_but, register_method

KINDS = {
    "batchnorm": nn.modules.batchnorm._BatchNorm,  # includes timm's BatchNormAct2d
    "layernorm": nn.LayerNorm,                     # includes timm's LayerNorm and LayerNorm2d
    "groupnorm": nn.GroupNorm,
}


def stem_modules(model: nn.Module) -> list[nn.Module]:
    """The top-level children before the first block's container: what point 0 stands for."""
    model = _unwrap(model)
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
    return [point.module(_unwrap(model))]


def norm_layers(model: nn.Module, layers, kinds) -> list[nn.Module]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise MethodError(f"norm kinds {unknown or kinds} invalid; choose from {sorted(KINDS)}")
    types = tuple(KINDS[k] for k in kinds)
    if layers is None:
        roots = [_unwrap(model)]
    else:
        roots = [m for p in resolve_layers(model, layers) for m in modules_at(model, p)]
    found, seen = [], set()
    for root in roots:
        for m in root.modules():
            if isinstance(m, types) and id(m) not in seen:
                seen.add(id(m))
                found.append(m)
    return found


@register_method("norm_tuning", FAMILIES, "affine parameters of norm layers (BN statistics frozen)")
def norm_tuning(model, head_prefixes, layers=None, kinds=("batchnorm", "layernorm", "groupnorm")):
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    head = freeze_all_but(model, head_prefixes)
    norms = norm_layers(model, layers, kinds)
    params = [p for m in norms for p in m.parameters(recurse=False)]  # weight and bias when affine
    if not params:
        raise MethodError(f"no affine {'/'.join(kinds)} layers in {type(_unwrap(model)).__name__} at layers={layers}")
    head_ids = {id(p) for p in head}
    params = [p for p in params if id(p) not in head_ids]
    for p in params:
        p.requires_grad_(True)
    return Adapted(model, "norm_tuning", {"norm": params, "head": head}, bn_mode="eval",
                   points=resolve_layers(model, layers) if layers is not None else [],
                   info={"kinds": kinds, "norm_layers": len(norms)})
