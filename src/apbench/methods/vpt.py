"""Visual prompt tuning (VPT, Jia et al. 2022): learnable tokens in the ViT token sequence.

Hooks on an unmodified timm ``VisionTransformer``:

* a forward pre-hook on the first prompted block inserts ``num_tokens`` prompt tokens right after
  the prefix tokens (class and register tokens, ``model.num_prefix_tokens``), so the sequence is
  ``[prefix | prompts | patches]``;
* ``deep``: every further prompted block replaces the prompt rows it receives (the previous block's
  outputs at those positions) by its own prompts; blocks not in ``layers`` pass them on unchanged;
  ``shallow``: prompts are inserted once, before the first block of ``layers`` (default block 1);
* a forward pre-hook on ``model.norm`` (the final norm, run once after the last block) drops the
  prompt rows, so ``forward_head``'s pooling sees exactly the tokens of the frozen model: ``token``
  reads the class token, ``avg`` averages the patch tokens only (it skips ``num_prefix_tokens``).

``layers`` names the blocks that get prompts in their input (block k = the block whose output is
point k). Init as in VPT: uniform in ±sqrt(6 / (3·patch_h·patch_w + D)), a Xavier-style range
that treats a prompt as if produced by the patch projection.

Swin is not supported: its blocks take H×W maps and attend within windows, so extra tokens need a
changed attention, not a hook.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..models.layers import unwrap
from .base import Adapted, MethodError, freeze_all_but, register_method
from .blocks import select_blocks

VARIANTS = ("shallow", "deep")


def init_range(model: nn.Module) -> float:
    ph, pw = model.patch_embed.patch_size
    in_chans = getattr(getattr(model.patch_embed, "proj", None), "in_channels", 3)
    return math.sqrt(6.0 / (in_chans * ph * pw + model.embed_dim))


@register_method("vpt")
def vpt(model, head_prefixes, variant="deep", num_tokens=10, layers=None):
    if variant not in VARIANTS:
        raise MethodError(f"vpt variant {variant!r} unknown; choose one of {VARIANTS}")
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or num_tokens <= 0:
        raise MethodError(f"vpt num_tokens={num_tokens!r} must be a positive integer")
    vit = unwrap(model)
    if layers is None:
        layers = "all" if variant == "deep" else [1]
    points = select_blocks(vit, layers, "vpt")
    points.sort(key=lambda p: p.index)
    if variant == "shallow" and len(points) != 1:
        raise MethodError(f"vpt shallow inserts prompts before one block; got layers {[p.key for p in points]}"
                          " (use variant=deep for prompts in several blocks)")

    head = freeze_all_but(model, head_prefixes)
    device = vit.patch_embed.proj.weight.device
    bound = init_range(vit)
    prompts = nn.ParameterDict()
    for p in points:
        t = torch.empty(1, num_tokens, vit.embed_dim, device=device)
        nn.init.uniform_(t, -bound, bound)
        prompts[p.key] = nn.Parameter(t)
    vit.apbench_vpt = prompts  # follows the model in state_dict / .to() / parameters()

    npt, T = vit.num_prefix_tokens, num_tokens

    def insert(prompt):
        def hook(mod, args):
            x = args[0]
            p = prompt.to(x.dtype).expand(x.shape[0], -1, -1)
            return (torch.cat([x[:, :npt], p, x[:, npt:]], dim=1), *args[1:])
        return hook

    def replace(prompt):
        def hook(mod, args):
            x = args[0]
            p = prompt.to(x.dtype).expand(x.shape[0], -1, -1)
            return (torch.cat([x[:, :npt], p, x[:, npt + T:]], dim=1), *args[1:])
        return hook

    def drop(mod, args):
        x = args[0]
        return (torch.cat([x[:, :npt], x[:, npt + T:]], dim=1), *args[1:])

    handles = []
    for i, p in enumerate(points):
        block = p.module(vit)
        handles.append(block.register_forward_pre_hook(insert(prompts[p.key]) if i == 0 else replace(prompts[p.key])))
    handles.append(vit.norm.register_forward_pre_hook(drop))
    return Adapted(model, "vpt", {"prompt": list(prompts.parameters()), "head": head},
                   inserted=sum(t.numel() for t in prompts.parameters()), points=points, handles=handles,
                   info={"variant": variant, "num_tokens": T, "init_range": bound,
                         "prompt_position": f"after {npt} prefix token(s)", "global_pool": vit.global_pool})
