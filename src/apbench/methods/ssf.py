"""SSF (Lian et al., 2022): scale and shift the features, ``gamma * x + beta`` per channel.

One (gamma, beta) pair per point of ``layers``; the default ``all`` puts one after every block.
Module paths reach single operations (``blocks.3.attn.qkv:output``, ``blocks.3.mlp.fc1:output``),
which is where the paper inserts them. gamma starts at 1 and beta at 0, so the adapted model starts
exactly as the pretrained one. The channel dim follows the activation's layout (NCHW maps, tokens×D,
Swin's NHWC), as for the activation prompt.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.layers import FAMILIES, probe_shapes, register_point_hook, resolve_layers
from .activation_prompt import prompt_shape
from .base import Adapted, MethodError, freeze_all_but, register_method


class ScaleShift(nn.Module):
    def __init__(self, shape, device=None, dtype=None):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(shape, device=device, dtype=dtype))
        self.shift = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


@register_method("ssf", FAMILIES, "per-channel scale and shift after each chosen point")
def ssf(model, head_prefixes, input_size, layers="all"):
    points = resolve_layers(model, layers)
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
        op = ScaleShift(prompt_shape(model, p, p.shape, "channel"), ref.device, ref.dtype)
        model.apbench_ssf[p.key.replace(".", "/")] = op
        handles.append(register_point_hook(model, p, op))
    params = list(model.apbench_ssf.parameters())
    return Adapted(model, "ssf", {"ssf": params, "head": head}, inserted=sum(p.numel() for p in params),
                   bn_mode="eval", points=points, handles=handles)
