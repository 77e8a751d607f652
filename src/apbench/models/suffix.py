"""Split an unmodified timm model at a point: ``run_prefix`` up to it, ``run_suffix`` from it.

``run_suffix(model, run_prefix(model, x, k), k) == model(x)``. The point ``k`` is a stem/block point
(``0..N``). What the prefix returns is the activation at ``k`` *before* the forward hooks of the
module at ``k`` fire, and the suffix fires those hooks first: a method's hook at ``k`` itself (the
activation prompt, SSF, a conv adapter) is applied exactly once, to a cached activation too.

The suffix calls the model's own modules (``module(x)``), never their code, so every hook a method
registered after ``k`` fires as in the full forward. Whole stages after ``k`` run as one call (their
own hooks fire, Swin/ConvNeXt downsamples included); the stage holding ``k`` runs its remaining
blocks one by one. Containers that are only partly run (ancestors of the module at ``k``, the model
itself) cannot fire their hooks; ``bypassed_hooks`` names them so a caller can refuse.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from .layers import Point, unwrap, block_points, family_of


class _Reached(Exception):
    """Raised by the capture hook to stop the forward at the point; carries the activation."""

    def __init__(self, value: torch.Tensor):
        super().__init__("prefix reached its point")
        self.value = value


def _stages(m: nn.Module, fam: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """([(stage module path, its block paths)], tail module paths before ``forward_head``).

    Mirrors each family's ``forward_features``; ``forward_head`` runs last for all of them.
    """
    if fam == "resnet":
        names = [f"layer{s + 1}" for s in range(4)]
        return [(n, [f"{n}.{j}" for j in range(len(m.get_submodule(n)))]) for n in names], []
    if fam == "efficientnet":
        return [(f"blocks.{s}", [f"blocks.{s}.{j}" for j in range(len(st))]) for s, st in enumerate(m.blocks)], \
            ["conv_head", "bn2"]
    if fam == "vit":
        return [("blocks", [f"blocks.{j}" for j in range(len(m.blocks))])], ["norm"]
    if fam == "swin":
        return [(f"layers.{s}", [f"layers.{s}.blocks.{j}" for j in range(len(st.blocks))])
                for s, st in enumerate(m.layers)], ["norm"]
    if fam == "convnext":
        return [(f"stages.{s}", [f"stages.{s}.blocks.{j}" for j in range(len(st.blocks))])
                for s, st in enumerate(m.stages)], ["norm_pre"]
    raise ValueError(f"no suffix plan for family {fam!r}")


def point_at(model: nn.Module, k: int | Point) -> Point:
    if isinstance(k, Point):
        if k.index is None:
            raise ValueError(f"point {k.key} is not a stem/block point; the prefix split needs 0..N")
        return k
    points = block_points(model)
    if not 0 <= int(k) < len(points):
        raise ValueError(f"point {k} out of range 0..{len(points) - 1}")
    return points[int(k)]


def suffix_steps(model: nn.Module, k: int | Point) -> list[str]:
    """Module paths the suffix calls after point ``k``, in order (``forward_head`` follows)."""
    m = unwrap(model)
    k = point_at(m, k).index
    stages, tail = _stages(m, family_of(m))
    steps, last = [], 0
    for stage, blocks in stages:
        first, last_here = last + 1, last + len(blocks)
        if k < first:
            steps.append(stage)                      # whole stage: its downsample and hooks included
        elif k < last_here:
            steps.extend(blocks[k - last:])          # the rest of the stage holding k
        last = last_here
    return steps + tail


def run_prefix(model: nn.Module, x: torch.Tensor, k: int | Point) -> torch.Tensor:
    """The activation at point ``k`` for input ``x``, before ``k``'s own forward hooks.

    Runs the model's real forward (wrappers such as peft included) and stops it at ``k`` with a hook
    that fires before any other hook there.
    """
    module = point_at(unwrap(model), k).module(unwrap(model))

    def capture(mod, args, out):
        raise _Reached(out)

    handle = module.register_forward_hook(capture, prepend=True)
    try:
        model(x)
    except _Reached as stop:
        return stop.value
    finally:
        handle.remove()
    raise RuntimeError(f"the forward never reached point {k}")


@contextmanager
def _returning(module: nn.Module, value: torch.Tensor):
    """Make ``module(...)`` skip its computation and return ``value``, so its hooks fire on it."""
    had = "forward" in module.__dict__
    old = module.__dict__.get("forward")
    module.forward = lambda *args, **kwargs: value  # an instance attribute shadows the class method
    try:
        yield
    finally:
        if had:
            module.forward = old
        else:
            del module.forward


def run_suffix(model: nn.Module, activation: torch.Tensor, k: int | Point,
               steps: list[str] | None = None) -> torch.Tensor:
    """Logits of the model from the activation at point ``k`` (as ``run_prefix`` returns it)."""
    m = unwrap(model)
    module = point_at(m, k).module(m)
    with _returning(module, activation):
        x = module(activation)                       # the hooks at k: applied here, exactly once
    for path in (steps if steps is not None else suffix_steps(m, k)):
        x = m.get_submodule(path)(x)
    return m.forward_head(x)


def _has_hooks(module: nn.Module, pre: bool = True, post: bool = True) -> bool:
    return bool((pre and module._forward_pre_hooks) or (post and module._forward_hooks))


def bypassed_hooks(model: nn.Module, k: int | Point) -> list[str]:
    """Modules whose hooks the split would skip or misapply: the containers around point ``k`` (only
    partly run; the model and its wrappers included) and pre-hooks on the module at ``k`` (they
    would see the cached output as input). Empty = the split is exact."""
    m = unwrap(model)
    path = point_at(m, k).module_path
    out = []
    for name, mod in model.named_modules():  # wrappers (peft) and the timm model itself
        if mod is m:
            break
        if _has_hooks(mod):
            out.append(name or "<wrapper>")
    parts = path.split(".")
    for i in range(len(parts)):
        anc = ".".join(parts[:i])
        if _has_hooks(m.get_submodule(anc) if anc else m):
            out.append(anc or "<model>")
    if _has_hooks(m.get_submodule(path), post=False):
        out.append(f"{path} (pre-hook)")
    return out


def hooked_descendants(model: nn.Module, k: int | Point) -> list[str]:
    """Modules inside the one at point ``k`` that carry hooks. The split replays only ``k``'s own
    hooks on the cached output, so hooks inside it (an adapter that stashes a sublayer's input) would
    not fire: such a point cannot be the cache point."""
    m = unwrap(model)
    inner = point_at(m, k).module(m)
    return [name for name, mod in inner.named_modules() if name and _has_hooks(mod)]


@contextmanager
def as_suffix(model: nn.Module, k: int | Point, dtype: torch.dtype | None = None):
    """While inside, ``model(activation)`` runs the suffix from ``k`` instead of the full forward.

    The model object itself is kept (parameters, names, hooks, ``state_dict``, train/eval flags), so
    optimizers, checkpoints and wrappers such as peft see no difference; only its input changes.
    ``dtype``: cast incoming activations to it (a cache stored in fp16 feeds an fp32 model).
    """
    m = unwrap(model)
    steps = suffix_steps(m, k)

    def forward(activation, *args, **kwargs):
        if dtype is not None:
            activation = activation.to(dtype)
        return run_suffix(m, activation, k, steps)

    had, old = "forward" in m.__dict__, m.__dict__.get("forward")
    m.forward = forward
    try:
        yield model
    finally:
        if had:
            m.forward = old
        else:
            del m.forward
