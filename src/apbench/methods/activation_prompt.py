"""Activation prompt (AP): one learnable tensor, shared by all inputs, added to an activation.

At point ``input`` it is additive visual prompting. Shapes:

* ``full``    -- the activation's own shape without the batch: C×H×W for CNNs, tokens×D for ViTs
  (prefix tokens included, one row each), H×W×C for Swin (channels last);
* ``channel`` -- one value per channel, broadcast over space / tokens: C×1×1 for NCHW maps, D for
  token and channels-last layouts (Swin blocks, LayerNorm/Linear inside ConvNeXt blocks without conv_mlp). Placed
  at the input of a frozen BatchNorm it is a shift of that BN's bias by gamma*a/sqrt(var+eps); placed
  right after a LayerNorm it is a shift of the LN's bias (see tests/test_ap.py).

Prompts live in ``model.apbench_prompts`` so they follow the model in ``state_dict``, ``.to()`` and
``parameters()``; the backbone itself is not modified, only hooked.
"""
from __future__ import annotations

import torch
from torch import nn

from timm.layers import LayerNorm2d

from ..models.layers import Point, unwrap, family_of, probe_shapes, register_point_hook, resolve_layers
from .base import Adapted, MethodError, freeze_all_but, register_method

SHAPES = ("full", "channel")
INITS = ("zeros", "normal")
# LayerNorm2d subclasses nn.LayerNorm, so the channels-first test comes first.
_CHANNELS_FIRST = (LayerNorm2d, nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)
_CHANNELS_LAST = (nn.LayerNorm, nn.Linear)


def channel_dim(model: nn.Module, point: Point, act_shape: tuple[int, ...]) -> int:
    """Which dim of ``act_shape`` (no batch dim) holds channels at ``point``.

    Shapes alone cannot tell NCHW from NHWC, so the answer comes from the family for stem/block
    points and from the module's type for module-path points (ConvNeXt blocks built with
    ``conv_mlp=False``, for one, switch to channels last around their LayerNorm and MLP). Other
    containers fall back to the family's layout.
    """
    ndim = len(act_shape)
    if point.kind == "input":
        return 0  # pixels are always NCHW
    if ndim <= 2:
        return ndim - 1  # tokens×D (or a pooled D)
    if point.kind == "module":
        mod = point.module(unwrap(model))
        if hasattr(mod, "fc1") and hasattr(mod, "fc2"):  # an MLP (Linear or 1×1 conv): its first/last layer decides
            mod = mod.fc1 if point.where == "input" else mod.fc2
        if isinstance(mod, _CHANNELS_FIRST):
            return 0
        if isinstance(mod, _CHANNELS_LAST):
            return ndim - 1
    return ndim - 1 if family_of(model) == "swin" else 0


def prompt_shape(model: nn.Module, point: Point, act_shape: tuple[int, ...], shape: str) -> tuple[int, ...]:
    if shape == "full":
        return tuple(act_shape)
    d = channel_dim(model, point, act_shape)
    # Trailing singleton dims broadcast over space; leading ones are dropped (C×1×1 for NCHW, C for NHWC).
    return (act_shape[d],) + (1,) * (len(act_shape) - 1 - d)


def attach_prompts(model: nn.Module, points, shape: str, init: str, input_size) -> nn.ParameterDict:
    if shape not in SHAPES:
        raise MethodError(f"ap shape {shape!r} unknown; choose one of {SHAPES}")
    if init not in INITS:
        raise MethodError(f"ap init {init!r} unknown; choose one of {INITS}")
    probe_shapes(model, points, input_size)
    ref = next(model.parameters())  # prompts live on the model's device, in its dtype
    prompts = nn.ParameterDict()
    for p in points:
        if p.shape is None:
            raise MethodError(f"point {p.key} produced no tensor to prompt")
        t = torch.zeros(prompt_shape(model, p, p.shape, shape), device=ref.device, dtype=ref.dtype)
        if init == "normal":
            nn.init.normal_(t, std=0.02)
        prompts[p.key.replace(".", "/")] = nn.Parameter(t)
    return prompts


@register_method("ap")
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
    # bn_mode eval: frozen BN keeps its running statistics, so the prompt is the only thing that moves.
    return Adapted(model, "ap", {"prompt": list(model.apbench_prompts.parameters()), "head": head},
                   inserted=inserted, bn_mode="eval", points=points, handles=handles,
                   info={"shape": shape, "init": init})
