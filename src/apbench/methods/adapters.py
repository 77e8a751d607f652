"""Bottleneck adapters, attached to unmodified timm blocks with forward hooks.

Each adapter is ``up(act(down(h)))``: a down-projection to ``bottleneck`` channels, ReLU, and an
up-projection back. ``up`` (weight and bias) starts at zero, so the adapted model computes exactly
what the frozen model computes until the first update.

* ``parallel`` (AdaptFormer, Chen et al. 2022; vit, swin): ``scale * adapter(x)`` is added to the
  block's output, where ``x`` is the residual stream the MLP sublayer reads (the input of
  ``norm2``), i.e. the adapter runs beside the MLP sublayer. ``scale`` defaults to 0.1 as in AdaptFormer.
* ``sequential`` (Houlsby et al. 2019; vit, swin): ``h + adapter(h)`` on the output ``h`` of the
  attention sublayer and of the MLP sublayer, before the block adds them to its residual stream.
* ``conv`` (resnet, convnext, efficientnet): ``y + adapter(y)`` on the block output ``y`` with 1×1
  convolutions.
* ``auto``: ``parallel`` for transformers, ``conv`` for CNNs (so one sweep covers every family).

Adapters live in ``model.apbench_adapters`` (keys: block number, ``_attn``/``_mlp`` for sequential).
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.layers import CNN_FAMILIES, TRANSFORMER_FAMILIES, unwrap, family_of, probe_shapes
from .base import Adapted, MethodError, freeze_all_but, register_method
from .blocks import bottleneck_width, select_blocks

VARIANT_FAMILIES = {"parallel": TRANSFORMER_FAMILIES, "sequential": TRANSFORMER_FAMILIES, "conv": CNN_FAMILIES}


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}
INITS = ("zero_up", "near_zero")


class Bottleneck(nn.Module):
    def __init__(self, dim: int, width: int, conv: bool = False, scale: float = 1.0, device=None,
                 activation: str = "relu", init: str = "zero_up", dropout: float = 0.0):
        super().__init__()
        make = (lambda i, o: nn.Conv2d(i, o, 1, device=device)) if conv else (lambda i, o: nn.Linear(i, o, device=device))
        self.down, self.act, self.up = make(dim, width), ACTIVATIONS[activation](), make(width, dim)
        self.drop = nn.Dropout(dropout)
        if init == "near_zero":  # adapter-bert: both weights truncated N(0, 1e-3), biases zero: near identity
            for lin in (self.down, self.up):
                nn.init.trunc_normal_(lin.weight, std=1e-3, a=-2e-3, b=2e-3)
                nn.init.zeros_(lin.bias)
        else:  # up at zero: exactly the frozen model at the start (AdaptFormer's "lora" init)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.up(self.drop(self.act(self.down(x))))


def _residual(adapter):
    return lambda mod, args, out: out + adapter(out)


def _parallel(block: nn.Module, adapter: Bottleneck):
    """Read the MLP sublayer's residual input at ``norm2``; add the adapter to the block output."""
    stash = {}

    def grab(mod, args):
        stash["x"] = args[0]

    def add(mod, args, out):
        return out + adapter(stash.pop("x")).reshape(out.shape)  # Swin: tokens (B, HW, C) -> map (B, H, W, C)

    return [block.norm2.register_forward_pre_hook(grab), block.register_forward_hook(add)]


@register_method("adapter")
def adapter(model, head_prefixes, input_size, variant="auto", bottleneck=64, layers="all", scale=None,
            activation="relu", init="zero_up", dropout=0.0, train_norms=False):
    fam = family_of(model)
    if variant == "auto":
        variant = "parallel" if fam in TRANSFORMER_FAMILIES else "conv"
    if variant not in VARIANT_FAMILIES:
        raise MethodError(f"adapter variant {variant!r} unknown; choose one of {('auto', *VARIANT_FAMILIES)}")
    if fam not in VARIANT_FAMILIES[variant]:
        raise MethodError(f"adapter variant {variant!r} does not apply to family {fam!r}; it supports: "
                          f"{', '.join(VARIANT_FAMILIES[variant])}")
    if activation not in ACTIVATIONS:
        raise MethodError(f"adapter activation {activation!r} unknown; choose one of {tuple(ACTIVATIONS)}")
    if init not in INITS:
        raise MethodError(f"adapter init {init!r} unknown; choose one of {INITS}")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise MethodError(f"adapter dropout={dropout!r} must be in [0, 1)")
    if train_norms and variant != "sequential":
        raise MethodError("adapter train_norms=true is Houlsby's (variant=sequential) only")
    scale = float(scale if scale is not None else (0.1 if variant == "parallel" else 1.0))
    make = dict(activation=activation, init=init, dropout=float(dropout))
    inner = unwrap(model)
    points = select_blocks(inner, layers, "adapter")
    head = freeze_all_but(model, head_prefixes)
    device = next(inner.parameters()).device

    adapters, handles = nn.ModuleDict(), []
    if variant == "conv":
        probe_shapes(inner, points, input_size)  # block output channels (NCHW for these families)
    for p in points:
        block = p.module(inner)
        if variant == "conv":
            dim = p.shape[0]
            a = adapters[p.key] = Bottleneck(dim, bottleneck_width(bottleneck, dim), conv=True, scale=scale, device=device, **make)
            handles.append(block.register_forward_hook(_residual(a)))
            continue
        if not all(hasattr(block, n) for n in ("attn", "norm2", "mlp")):
            raise MethodError(f"adapter {variant}: block {p.module_path} ({type(block).__name__}) has no "
                              "attn/norm2/mlp sublayers (timm Block / SwinTransformerBlock expected)")
        dim = block.norm2.normalized_shape[-1]
        width = bottleneck_width(bottleneck, dim)
        if variant == "parallel":
            a = adapters[p.key] = Bottleneck(dim, width, scale=scale, device=device, **make)
            handles += _parallel(block, a)
        else:
            for sub in ("attn", "mlp"):
                a = adapters[f"{p.key}_{sub}"] = Bottleneck(dim, width, scale=scale, device=device, **make)
                handles.append(getattr(block, sub).register_forward_hook(_residual(a)))
    inner.apbench_adapters = adapters
    params = list(adapters.parameters())
    norms = []
    if train_norms:  # Houlsby: the LayerNorms of the adapted blocks train with the adapters
        for p in points:
            for m in p.module(inner).modules():
                if isinstance(m, nn.LayerNorm):
                    norms += [t for t in m.parameters() if not t.requires_grad]
        for t in norms:
            t.requires_grad_(True)
    params += norms
    return Adapted(model, "adapter", {"adapter": params, "head": head}, inserted=sum(t.numel() for t in adapters.parameters()),
                   points=points, handles=handles, train_modules=list(adapters.values()),
                   info={"variant": variant, "bottleneck": bottleneck, "scale": scale, "activation": activation,
                         "init": init, "dropout": float(dropout), "norms_trained": sum(t.numel() for t in norms)})
