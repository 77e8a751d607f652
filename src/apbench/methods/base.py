"""What every method returns, and the registry that methods join with one decorator line."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Iterable

from torch import nn

from ..models.layers import Point, family_of
from ..models.naming import under_prefixes
from .catalog import CATALOG


class MethodError(ValueError):
    """A method asked for something it cannot do on this model (wrong family, bad argument)."""


@dataclass
class Adapted:
    """A model prepared for training by a method.

    ``param_groups`` maps a group name (``prompt``, ``head``, ``backbone`` ...) to its trainable
    parameters so the trainer can give groups their own learning rates. ``bn_mode`` says how the
    frozen parts run during training: ``eval`` (BatchNorm uses its running statistics and never
    updates them, dropout and drop-path off) or ``train_stats`` (the whole model in train mode).
    """

    model: nn.Module
    method: str
    param_groups: dict[str, list[nn.Parameter]]
    inserted: int = 0
    bn_mode: str = "eval"
    points: list[Point] = field(default_factory=list)
    handles: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    # Maps the model's output to the task's logits (label mapping onto a source head); None = identity.
    output_map: Callable | None = None
    # Inserted modules that run in train mode while training (their own dropout, e.g. AdaptFormer's),
    # even when the frozen model runs in eval mode.
    train_modules: list = field(default_factory=list)

    def logits(self, x):
        out = self.model(x)
        return self.output_map(out) if self.output_map is not None else out

    def __post_init__(self):
        # Read by the efficiency measures, so they run the model in the same mode as training.
        self.model.apbench_bn_mode = self.bn_mode

    def trainable(self) -> list[nn.Parameter]:
        seen, out = set(), []
        for params in self.param_groups.values():
            for p in params:
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def train(self, mode: bool = True) -> "Adapted":
        if mode and self.bn_mode == "train_stats":
            self.model.train()
        else:
            self.model.eval()  # frozen BN keeps its statistics; dropout/drop-path off in frozen parts
        if mode:
            for m in self.train_modules:
                m.train()
        return self

    def eval(self) -> "Adapted":
        return self.train(False)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


@dataclass
class MethodInfo:
    name: str
    fn: Callable[..., Adapted]
    families: tuple[str, ...]
    takes_layers: bool
    summary: str

    def arguments(self) -> list[str]:
        params = list(inspect.signature(self.fn).parameters)
        return [p for p in params if p not in ("model", "head_prefixes", "input_size")]


METHODS: dict[str, MethodInfo] = {}


def register_method(name: str):
    """Bind ``fn`` to the catalog entry ``name`` (its families and summary live there, so they can be
    listed without importing the method)."""
    def deco(fn):
        if name not in CATALOG:
            raise KeyError(f"method {name!r} is not in apbench/methods/catalog.py; add its entry there")
        entry = CATALOG[name]
        takes_layers = "layers" in inspect.signature(fn).parameters
        METHODS[name] = MethodInfo(name, fn, entry.families, takes_layers, entry.summary)
        return fn
    return deco


def freeze_all_but(model: nn.Module, prefixes: Iterable[str]) -> list[nn.Parameter]:
    """Freeze every parameter whose name does not start with one of ``prefixes``; return the others."""
    prefixes = tuple(p for p in prefixes if p)
    keep = []
    for name, p in model.named_parameters():
        trainable = under_prefixes(name, prefixes)
        p.requires_grad_(trainable)
        if trainable:
            keep.append(p)
    return keep


def check_family(model: nn.Module, method: str, families: tuple[str, ...]) -> str:
    fam = family_of(model)
    if fam not in families:
        raise MethodError(
            f"method {method!r} does not apply to {type(model).__name__} (family {fam!r}); "
            f"it supports: {', '.join(families)}"
        )
    return fam
