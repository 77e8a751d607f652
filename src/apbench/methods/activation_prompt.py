"""Activation prompt (AP): one learnable tensor, shared by all inputs, added to an activation.

At point ``input`` it is additive visual prompting. Shapes:

* ``full``    -- the activation's own shape without the batch: C×H×W for CNNs, tokens×D for ViTs
  (prefix tokens included, one row each), H×W×C for Swin (channels last);
* ``channel`` -- one value per channel, broadcast over space / tokens: C×1×1 for NCHW maps, D for
  token and channels-last layouts. Placed before a frozen BatchNorm this is a shift of that BN's bias
  (see tests/test_ap_norm_link.py).

Prompts live in ``model.apbench_prompts`` so they follow the model in ``state_dict``, ``.to()`` and
``parameters()``; the backbone itself is not modified, only hooked.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.layers import FAMILIES, probe_shapes, register_point_hook, resolve_layers
from .base import Adapted, MethodError, freeze_all_but, register_method

SHAPES = ("full", "channel")
INITS = ("zeros", "normal")


def prompt_shape(act_shape: tuple[int, ...], shape: str, family: str, point_kind: str) -> tuple[int, ...]:
    if shape == "full":
        return tuple(act_shape)
    if len(act_shape) == 3 and not (family == "swin" and point_kind != "input"):
        return (act_shape[0], 1, 1)  # NCHW: per channel
    return (act_shape[-1],)          # tokens×D or NHWC: per channel on the last dim


def attach_prompts(model: nn.Module, points, shape: str, init: str, input_size) -> nn.ParameterDict:
    from ..models.layers import family_of

    if shape not in SHAPES:
        raise MethodError(f"ap shape {shape!r} unknown; choose one of {SHAPES}")
    if init not in INITS:
        raise MethodError(f"ap init {init!r} unknown; choose one of {INITS}")
    family = family_of(model)
    probe_shapes(model, points, input_size)
    device = next(model.parameters()).device
    prompts = nn.ParameterDict()
    for p in points:
        if p.shape is None:
            raise MethodError(f"point {p.key} produced no tensor to prompt")
        t = torch.zeros(prompt_shape(p.shape, shape, family, p.kind), device=device)
        if init == "normal":
            nn.init.normal_(t, std=0.02)
        prompts[p.key.replace(".", "/")] = nn.Parameter(t)
    return prompts


@register_method("ap", FAMILIES, "additive prompt on the activation at the given point(s)")
def activation_prompt(model, head_prefixes, input_size, layers=(-1,), shape="full", init="zeros"):
    points = resolve_layers(model, layers)
    if not points:
        raise MethodError("ap needs at least one layer, e.g. method.layers=[8]")
    head = freeze_all_but(model, head_prefixes)
    model.apbench_prompts = attach_prompts(model, points, shape, init, input_size)
    handles = []
    for p in points:
        prompt = model.apbench_prompts[p.key.replace(".", "/")]
        handles.append(register_point_hook(model, p, lambda t, prompt=prompt: t + prompt))
    inserted = sum(p.numel() for p in model.apbench_prompts.parameters())
    return Adapted(model, "ap", {"prompt": list(model.apbench_prompts.parameters()), "head": head},
                   inserted=inserted, points=points, handles=handles, info={"shape": shape, "init": init})
