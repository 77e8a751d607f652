"""The method registry: importing this module registers every method (and loads torch)."""
from __future__ import annotations

import importlib
from typing import Sequence

from torch import nn

from .base import METHODS, Adapted, MethodError, check_family
from .catalog import CATALOG
from .heads import HEADS, HeadError, head_prefixes_of, setup_head

for _entry in CATALOG.values():  # each module's @register_method line fills METHODS
    importlib.import_module(f"{__package__}.{_entry.module}")


def apply(model: nn.Module, name: str, input_size: Sequence[int] | None = None,
          head_prefixes: Sequence[str] | None = None, **kwargs) -> Adapted:
    """Prepare ``model`` for training with method ``name``; returns the trainable set and what was inserted.

    ``head_prefixes`` names the parameters of the (new) head, which stay trainable; by default the
    timm classifier. ``input_size`` (C, H, W) is needed by methods that size tensors from activations.
    """
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    info = METHODS[name]
    check_family(model, name, info.families)
    unknown = set(kwargs) - set(info.arguments())
    if unknown:
        raise MethodError(f"method {name!r} takes no argument(s) {sorted(unknown)}; valid: {info.arguments()}")
    if input_size is None:
        input_size = getattr(model, "pretrained_cfg", {}).get("input_size", (3, 224, 224))
    call = dict(kwargs, head_prefixes=list(head_prefixes if head_prefixes is not None else head_prefixes_of(model)))
    import inspect
    if "input_size" in inspect.signature(info.fn).parameters:
        call["input_size"] = tuple(input_size)
    return info.fn(model, **call)


__all__ = ["apply", "Adapted", "MethodError", "METHODS", "head_prefixes_of", "HEADS", "HeadError", "setup_head"]
