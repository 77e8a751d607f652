"""Helpers shared by the block-level methods (VPT, LoRA/peft, adapters).

These methods read the common ``layers`` spec as *which blocks get the method's parameters*: block
``k`` (1-based, as in ``apbench layers``) is the block whose output is point ``k``. ``all`` is every
block. The stem (``0``), ``input`` and module paths that are not blocks have no block to change.
"""
from __future__ import annotations

from torch import nn

from ..models.layers import Point, resolve_layers
from ..models.naming import under_prefixes
from .base import MethodError


def select_blocks(model: nn.Module, layers, method: str, allow_modules: bool = False) -> list[Point]:
    """Block points of ``layers``; with ``allow_modules`` module paths (``blocks.0.attn.qkv``) pass too,
    for methods that can act on a single layer (peft tuners)."""
    points = resolve_layers(model, layers)
    bad = [p.key for p in points if p.kind != "block" and not (allow_modules and p.kind == "module")]
    if bad:
        raise MethodError(
            f"{method}: layers {bad} are not blocks; {method} changes blocks, so layers name blocks "
            f"1..N (block k's output is point k), ranges such as '1-4', negatives, or 'all'")
    if not points:
        raise MethodError(f"{method} needs at least one block, e.g. method.layers=all or method.layers=[1]")
    return points


def split_head(model: nn.Module, head_prefixes) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Make the head trainable; return (head parameters, other trainable parameters)."""
    head, other = [], []
    for name, p in model.named_parameters():
        if under_prefixes(name, head_prefixes):
            p.requires_grad_(True)
            head.append(p)
        elif p.requires_grad:
            other.append(p)
    return head, other


def bottleneck_width(bottleneck, dim: int) -> int:
    """An int is an absolute width; a float in (0, 1] a fraction of the block's width (CNN stages differ)."""
    if isinstance(bottleneck, bool) or not isinstance(bottleneck, (int, float)) or bottleneck <= 0:
        raise MethodError(f"bottleneck={bottleneck!r} must be a positive int (width) or a float in (0, 1] (fraction)")
    if isinstance(bottleneck, float):
        if bottleneck > 1:
            raise MethodError(f"bottleneck={bottleneck} as a fraction must be in (0, 1]")
        return max(1, round(bottleneck * dim))
    return int(bottleneck)
