"""Shared by ``lora`` and ``peft``: choose target modules from the layers spec, wrap with peft.

The timm model is wrapped with ``peft.get_peft_model`` (a ``PeftModel`` whose forward calls the timm
model); peft injects its layers into the timm model in place, so parameter names of the timm
model (``head.weight``, ``blocks.3.attn.qkv.lora_A.default.weight``) and ``layers.family_of`` keep
working. The new head stays a plain trainable module *outside* peft (not ``modules_to_save``, which
would keep a frozen copy of the head next to the trained one).
"""
from __future__ import annotations

import re

from torch import nn

from ..models.layers import Point, unwrap, family_of
from .base import Adapted, MethodError
from .blocks import split_head

# Per family, what ``targets: null`` means. Names match a module path inside a block by suffix
# (``qkv`` -> ``attn.qkv``); ``conv`` is every ungrouped convolution of the block (shortcut
# included), ``linear`` every Linear. Depthwise convs are left out by ``conv``: peft refuses a
# grouped conv unless r is divisible by its groups, and they hold few weights anyway.
DEFAULT_TARGETS = {"vit": ["qkv"], "swin": ["qkv"], "resnet": ["conv"], "efficientnet": ["conv"],
                   "convnext": ["fc1", "fc2"]}


def _matches(rel: str, mod: nn.Module, target: str) -> bool:
    if target == "conv":
        return isinstance(mod, nn.Conv2d) and mod.groups == 1
    if target == "linear":
        return isinstance(mod, nn.Linear)
    return (rel == target or rel.endswith("." + target)) and isinstance(mod, (nn.Linear, nn.Conv2d))


def target_names(model: nn.Module, points: list[Point], targets, r: int | None = None) -> list[str]:
    """Full module names of the targeted Linear/Conv2d layers inside the chosen blocks, plus the layers
    named directly by module-path points (``blocks.0.attn.qkv``)."""
    inner = unwrap(model)
    targets = list(targets) if targets else DEFAULT_TARGETS[family_of(inner)]
    names, found = [], set()
    for p in [p for p in points if p.kind == "module"]:
        mod = p.module(inner)
        if not isinstance(mod, (nn.Linear, nn.Conv2d)):
            raise MethodError(f"layer {p.key}: a module path given to a peft tuner must name a Linear or Conv2d "
                              f"layer, not {type(mod).__name__}; run `apbench layers MODEL --modules`")
        names.append(p.module_path)
    points = [p for p in points if p.kind != "module"]
    if not points:
        return names
    for p in points:
        block = p.module(inner)
        for rel, mod in block.named_modules():
            hit = [t for t in targets if rel and _matches(rel, mod, t)]
            if not hit:
                continue
            found.update(hit)
            if isinstance(mod, nn.Conv2d) and mod.groups > 1 and r is not None and r % mod.groups:
                raise MethodError(f"{p.module_path}.{rel} is a grouped conv (groups={mod.groups}); peft's LoRA "
                                  f"needs r divisible by the groups (r={r}); target pointwise convs with 'conv'")
            names.append(f"{p.module_path}.{rel}")
    missing = [t for t in targets if t not in found]
    if missing:
        block = points[0].module(inner)
        avail = [rel for rel, m in block.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        raise MethodError(f"targets {missing} match no Linear/Conv2d in blocks {[p.key for p in points]}; "
                          f"in block {points[0].key} there are: {avail} (or the keywords 'conv', 'linear')")
    return names


def names_regex(names: list[str]) -> str:
    """One regex that peft full-matches against module names: exactly these modules."""
    return "(?:" + "|".join(re.escape(n) for n in names) + ")"


def wrap(model: nn.Module, config, head_prefixes, method: str, points: list[Point], merge: bool,
         group: str, info: dict) -> "PeftAdapted":
    from peft import get_peft_model

    try:
        peft_model = get_peft_model(model, config)
    except (ValueError, TypeError, KeyError, NotImplementedError, AttributeError) as e:
        raise MethodError(f"peft {config.peft_type} could not be applied to {type(model).__name__}: {e}") from e
    # peft left exactly its own layers trainable; the new head trains too.
    head, adapter = split_head(model, head_prefixes)
    if not adapter:
        raise MethodError(f"peft {config.peft_type} inserted no trainable parameters; check target_modules")
    info = dict(info, peft_type=str(getattr(config.peft_type, "value", config.peft_type)),
                merged_at_inference=bool(merge))
    return PeftAdapted(peft_model, method, {group: adapter, "head": head},
                       inserted=sum(p.numel() for p in adapter), points=points, info=info)


class PeftAdapted(Adapted):
    """``Adapted`` for a peft-wrapped model.

    Training puts the frozen backbone in eval mode (as every method here) but peft's own layers in
    train mode, so LoRA dropout and LoHa/LoKr rank/module dropout act while training. With
    ``merged_at_inference`` the adapters are merged into the frozen weights on ``eval()`` (inference
    then costs what the backbone costs) and unmerged on ``train()``; merging and unmerging rounds,
    so frozen weights can differ from the originals in the last bits after a cycle.
    """

    def _tuner_layers(self):
        from peft.tuners.tuners_utils import BaseTunerLayer
        return [m for m in self.model.modules() if isinstance(m, BaseTunerLayer)]

    def train(self, mode: bool = True) -> "PeftAdapted":
        super().train(mode)
        layers = self._tuner_layers()
        merged = any(layer.merged for layer in layers)
        if mode:
            if merged:
                self.model.unmerge_adapter()
            for layer in layers:
                layer.train(True)  # a wrapped Linear/Conv has no mode-dependent state of its own
        elif self.info.get("merged_at_inference") and not merged:
            self.model.merge_adapter()
        return self
