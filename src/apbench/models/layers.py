"""One addressing scheme for every method: the ordered points of a backbone.

A *point* is where an activation can be read or changed:

* ``input``  -- the pixel input (an activation prompt here is additive visual prompting);
* ``0``      -- the output of the stem / patch embedding. For timm ViTs this is the output of
  ``norm_pre``: after patch embedding, class/register tokens, position embedding and ``norm_pre``,
  i.e. exactly the tensor the first block receives. Prefix tokens (class, register, VPT prompts)
  are part of that tensor, so a full-shape prompt there has one row per token, prefix tokens included;
* ``k``      -- the output of block ``k`` (1-based, counted across stages);
* ``-k``     -- counted from the end (``-1`` is the last block);
* ``module.path:output`` / ``module.path:input`` -- any other module's output or input.

Points are individual blocks, not stages; ``list_points`` reports each block's stage so stage
boundaries can be shown. Shapes come from forward hooks on the modules themselves, so families that
keep channels last inside (Swin) report NHWC shapes.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from .families import CNN_FAMILIES, FAMILIES, TRANSFORMER_FAMILIES  # noqa: F401  (the methods import them from here)


class LayerSpecError(ValueError):
    """A layer spec that does not address a point of this model."""


@dataclass
class Point:
    key: str                 # "input", "0", "5", or "module.path:output"
    module_path: str         # "" for the root module
    where: str               # "output" or "input" of that module
    index: int | None        # position in the ordered list (input = None)
    stage: int | None = None
    kind: str = "block"      # input | stem | block | module
    shape: tuple[int, ...] | None = field(default=None, compare=False)  # without batch dim

    def module(self, model: nn.Module) -> nn.Module:
        return model.get_submodule(self.module_path) if self.module_path else model


# --- families: (stem module path, [(block path, stage)]) -------------------------------------------

def _effnet(m):
    blocks = [(f"blocks.{s}.{j}", s) for s, stage in enumerate(m.blocks) for j in range(len(stage))]
    return "bn1", blocks


def _resnet(m):
    blocks = [(f"layer{s + 1}.{j}", s) for s in range(4) for j in range(len(getattr(m, f"layer{s + 1}")))]
    return "maxpool", blocks


def _vit(m):
    return "norm_pre", [(f"blocks.{j}", 0) for j in range(len(m.blocks))]


def _swin(m):
    blocks = [(f"layers.{s}.blocks.{j}", s) for s, st in enumerate(m.layers) for j in range(len(st.blocks))]
    return "patch_embed", blocks


def _convnext(m):
    blocks = [(f"stages.{s}.blocks.{j}", s) for s, st in enumerate(m.stages) for j in range(len(st.blocks))]
    return "stem", blocks


def _family_table() -> list[tuple[str, type, Callable]]:
    from timm.models.convnext import ConvNeXt
    from timm.models.efficientnet import EfficientNet
    from timm.models.resnet import ResNet
    from timm.models.swin_transformer import SwinTransformer
    from timm.models.vision_transformer import VisionTransformer

    return [
        ("efficientnet", EfficientNet, _effnet),
        ("resnet", ResNet, _resnet),
        ("vit", VisionTransformer, _vit),
        ("swin", SwinTransformer, _swin),
        ("convnext", ConvNeXt, _convnext),
    ]




def unwrap(model: nn.Module) -> nn.Module:
    """peft wraps the timm model; the points are those of the model inside."""
    base = getattr(model, "base_model", None)
    inner = getattr(base, "model", None)
    return inner if isinstance(inner, nn.Module) else model


def family_of(model: nn.Module) -> str:
    model = unwrap(model)
    for name, cls, _ in _family_table():
        if isinstance(model, cls):
            return name
    raise LayerSpecError(
        f"{type(model).__name__} is not a supported family; supported: {', '.join(FAMILIES)}. "
        "Address its modules by path instead (e.g. 'blocks.3:output')."
    )


def block_points(model: nn.Module) -> list[Point]:
    """``[0 (stem), 1..N (blocks)]`` without shapes."""
    model = unwrap(model)
    fam = family_of(model)
    stem, blocks = dict((n, f) for n, _, f in _family_table())[fam](model)
    pts = [Point("0", stem, "output", 0, stage=None, kind="stem")]
    pts += [Point(str(i + 1), path, "output", i + 1, stage=s) for i, (path, s) in enumerate(blocks)]
    return pts


def input_point() -> Point:
    return Point("input", "", "input", None, kind="input")


def num_blocks(model: nn.Module) -> int:
    return len(block_points(model)) - 1


def _parse_one(model: nn.Module, item, points: list[Point]) -> Point:
    text = str(item).strip()
    if text == "input":
        return input_point()
    if text.endswith("%") and text[:-1].replace(".", "", 1).isdigit():
        # A depth fraction, so one candidate list fits every backbone (AP's declared layer space):
        # q% is block round(q/100 * n) of n blocks; 0% is the stem output, 100% the last block.
        q = float(text[:-1])
        if q > 100:
            raise LayerSpecError(f"layer {text!r}: a depth fraction must be between 0% and 100%")
        return points[int(math.floor(q / 100 * (len(points) - 1) + 0.5))]
    if ":" in text or (text and not text.lstrip("-").isdigit()):
        path, _, where = text.partition(":")
        where = where or "output"
        if where not in ("input", "output"):
            raise LayerSpecError(f"layer {text!r}: the part after ':' must be 'input' or 'output'")
        try:
            unwrap(model).get_submodule(path)
        except AttributeError:
            raise LayerSpecError(
                f"layer {text!r}: no module {path!r} in {type(unwrap(model)).__name__}; "
                "run `apbench layers MODEL --modules` to list module paths"
            ) from None
        for p in points:  # a module path that names a block point is that point
            if p.module_path == path and p.where == where:
                return p
        return Point(f"{path}:{where}", path, where, None, kind="module")
    n = len(points) - 1
    k = int(text)
    if k < 0:  # -1 is the last block, -n the first; the stem has no negative name
        k = n + 1 + k if -k <= n else -1
    if not 0 <= k <= n:
        raise LayerSpecError(
            f"layer {item} is out of range for {type(unwrap(model)).__name__} with {n} blocks: "
            f"valid points are 'input', 0..{n} (0 = stem output) or -1..-{n}"
        )
    return points[k]


def resolve_layers(model: nn.Module, spec) -> list[Point]:
    """Turn a layer spec into points.

    ``spec`` may be an int, a string (``"input"``, ``"8"``, ``"-1"``, ``"all"``, ``"blocks.3:input"``,
    ``"1-4"`` an inclusive range, ``"3,5"``), or a list of those. Duplicates are removed, order kept.
    """
    points = block_points(model)
    if spec is None:
        return []
    # Hydra hands lists over as ListConfig: anything iterable but a string is a list of items.
    items = [spec] if isinstance(spec, (str, int)) or not hasattr(spec, "__iter__") else list(spec)
    out: list[Point] = []
    for item in items:
        text = str(item).strip()
        if text == "all":
            out.extend(points[1:])
        elif text == "all_with_stem":
            out.extend(points)
        elif "," in text:
            out.extend(resolve_layers(model, text.split(",")))
        elif "-" in text[1:] and ":" not in text and text.replace("-", "").isdigit():
            a, b = text.split("-", 1) if not text.startswith("-") else (text, None)
            lo, hi = _parse_one(model, a, points).index, _parse_one(model, b, points).index
            out.extend(points[lo:hi + 1])
        else:
            out.append(_parse_one(model, text, points))
    seen, unique = set(), []
    for p in out:
        if p.key not in seen:
            seen.add(p.key)
            unique.append(p)
    return unique


def register_point_hook(model: nn.Module, point: Point, fn: Callable[[torch.Tensor], torch.Tensor]):
    """Apply ``fn`` to the activation at ``point``; returns the hook handle."""
    module = point.module(unwrap(model)) if point.kind != "input" else model
    if point.where == "output":
        return module.register_forward_hook(lambda mod, args, out: fn(out))

    def pre(mod, args, kwargs):
        return (fn(args[0]), *args[1:]), kwargs

    return module.register_forward_pre_hook(pre, with_kwargs=True)


@torch.no_grad()
def probe_shapes(model: nn.Module, points: Sequence[Point], input_size: Sequence[int]) -> list[Point]:
    """Fill in each point's activation shape from a forward pass at batch 1.

    Runs on the model's own device; a model built on the ``meta`` device allocates nothing.
    """
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for p in points:
        def grab(t, key=p.key):
            if isinstance(t, torch.Tensor):
                shapes[key] = tuple(t.shape[1:])
            return t
        handles.append(register_point_hook(model, p, grab))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    for p in points:
        p.shape = shapes.get(p.key)
    return list(points)


def list_points(model: nn.Module, input_size: Sequence[int]) -> list[Point]:
    """Every addressable point (input, stem, blocks) with its activation shape."""
    return probe_shapes(model, [input_point(), *block_points(model)], input_size)


def format_points(model_name: str, points: Sequence[Point]) -> str:
    lines = [f"{model_name}: {len(points) - 1} points after the input (0 = stem, 1..{len(points) - 2} = blocks)",
             f"{'point':>6}  {'stage':>5}  {'module':<28} {'shape'}"]
    last_stage = None
    for p in points:
        if p.stage is not None and p.stage != last_stage and p.kind == "block":
            lines.append(f"{'':>6}  {'-- stage ' + str(p.stage):<36}")
            last_stage = p.stage
        where = p.module_path + (":" + p.where if p.kind != "block" and p.module_path else "") or "(pixels)"
        shape = "x".join(map(str, p.shape)) if p.shape else "?"
        stage = "" if p.stage is None else str(p.stage)
        lines.append(f"{p.key:>6}  {stage:>5}  {where:<28} {shape}")
    return "\n".join(lines)
