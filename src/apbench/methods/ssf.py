"""SSF (Lian et al., 2022): scale and shift the features, ``gamma * x + beta`` per channel.

Placements:

* ``reference`` -- where dongzelian/SSF inserts them: after every qkv, proj, fc1 and fc2 linear and
  every LayerNorm of the chosen blocks of a transformer (plus the final norm when ``layers`` covers
  the last block); after every convolution and norm layer of the chosen blocks of a CNN.
* ``blocks`` -- one pair after each point of ``layers`` (apbench's earlier SSF, kept as a variant).

``init``: ``normal`` as the reference (scale N(1, 0.02), shift N(0, 0.02)), or ``identity`` (1 and 0:
the adapted model starts exactly as the pretrained one). The channel dim follows the activation's
layout (NCHW maps, tokens×D, Swin's NHWC), as for the activation prompt.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.layers import (TRANSFORMER_FAMILIES, unwrap, block_points, family_of, probe_shapes,
                             register_point_hook, resolve_layers)
from .activation_prompt import prompt_shape
from .base import Adapted, MethodError, freeze_all_but, register_method
from .blocks import select_blocks


PLACEMENTS = ("reference", "blocks")
INITS = ("normal", "identity")
_TRANSFORMER_OPS = ("qkv", "proj", "fc1", "fc2")


class ScaleShift(nn.Module):
    def __init__(self, shape, device=None, dtype=None, init: str = "identity"):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(shape, device=device, dtype=dtype))
        self.shift = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))
        if init == "normal":
            nn.init.normal_(self.scale, mean=1.0, std=0.02)
            nn.init.normal_(self.shift, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def reference_points(model: nn.Module, layers) -> list:
    """The operations of the chosen blocks that the SSF reference scales and shifts."""
    inner = unwrap(model)
    blocks = select_blocks(inner, layers, "ssf")
    transformer = family_of(model) in TRANSFORMER_FAMILIES
    paths = []
    for b in blocks:
        for rel, m in b.module(inner).named_modules():
            if not rel:
                continue
            if transformer:
                hit = isinstance(m, nn.LayerNorm) or (isinstance(m, nn.Linear) and rel.rsplit(".", 1)[-1] in _TRANSFORMER_OPS)
            else:
                hit = isinstance(m, (nn.Conv2d, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm))
            if hit:
                paths.append(f"{b.module_path}.{rel}:output")
    last = block_points(inner)[-1]
    norm = getattr(inner, "norm", None)
    if transformer and isinstance(norm, nn.LayerNorm) and any(b.key == last.key for b in blocks):
        paths.append("norm:output")
    return resolve_layers(model, paths)


@register_method("ssf")
def ssf(model, head_prefixes, input_size, layers="all", placement="reference", init="normal"):
    if placement not in PLACEMENTS:
        raise MethodError(f"ssf placement {placement!r} unknown; choose one of {PLACEMENTS}")
    if init not in INITS:
        raise MethodError(f"ssf init {init!r} unknown; choose one of {INITS}")
    points = reference_points(model, layers) if placement == "reference" else resolve_layers(model, layers)
    if not points:
        raise MethodError("ssf needs at least one layer, e.g. method.layers=all")
    head = freeze_all_but(model, head_prefixes)
    probe_shapes(model, points, input_size)
    ref = next(model.parameters())
    model.apbench_ssf = nn.ModuleDict()
    handles = []
    for p in points:
        if p.shape is None:
            raise MethodError(f"point {p.key} produced no tensor to scale")
        op = ScaleShift(prompt_shape(model, p, p.shape, "channel"), ref.device, ref.dtype, init=init)
        model.apbench_ssf[p.key.replace(".", "/")] = op
        handles.append(register_point_hook(model, p, op))
    params = list(model.apbench_ssf.parameters())
    return Adapted(model, "ssf", {"ssf": params, "head": head}, inserted=sum(p.numel() for p in params),
                   bn_mode="eval", points=points, handles=handles,
                   info={"placement": placement, "init": init, "operations": len(points)})
