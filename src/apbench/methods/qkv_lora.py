"""LoRA on the q, k or v part of a fused ``qkv`` Linear (timm ViT/Swin attention), as separate targets.

peft adapts whole modules, and timm fuses q, k and v into one ``attn.qkv`` Linear, so LoRA's usual
"q and v only" setting (Hu et al. 2021) is not a peft target there. This adds ``(alpha/r)·B·A x`` to
the chosen thirds of the qkv output with a forward hook; B starts at zero (training starts from the
frozen model), A as peft initialises it (kaiming-uniform, a=sqrt(5)).
"""
from __future__ import annotations

import math

import torch
from torch import nn

PARTS = ("q", "k", "v")


class SliceLoRA(nn.Module):
    def __init__(self, dim: int, parts, r: int, alpha: float, dropout: float, device=None):
        super().__init__()
        self.parts, self.scaling, self.dim = list(parts), alpha / r, dim
        self.A = nn.ParameterDict({p: nn.Parameter(torch.empty(r, dim, device=device)) for p in self.parts})
        self.B = nn.ParameterDict({p: nn.Parameter(torch.zeros(dim, r, device=device)) for p in self.parts})
        for a in self.A.values():
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        self.drop = nn.Dropout(dropout)

    def hook(self, mod, args, out):
        x = self.drop(args[0])
        deltas = [torch.zeros_like(out[..., :self.dim])] * 3
        for p in self.parts:
            deltas[PARTS.index(p)] = (x @ self.A[p].t() @ self.B[p].t()) * self.scaling
        return out + torch.cat(deltas, dim=-1)


def attach(inner: nn.Module, points, parts, r: int, alpha: float, dropout: float):
    """``(modules, handles, names)``: one SliceLoRA per chosen block's ``attn.qkv``."""
    mods, handles, names = nn.ModuleDict(), [], []
    for p in points:
        qkv = getattr(getattr(p.module(inner), "attn", None), "qkv", None)
        if not isinstance(qkv, nn.Linear) or qkv.out_features != 3 * qkv.in_features:
            from .base import MethodError
            raise MethodError(f"lora targets {list(parts)}: block {p.module_path} has no fused attn.qkv Linear "
                              "(timm ViT / Swin attention); use targets like [qkv] instead")
        m = mods[p.key] = SliceLoRA(qkv.in_features, parts, r, alpha, dropout, device=qkv.weight.device)
        handles.append(qkv.register_forward_hook(m.hook))
        names.append(f"{p.module_path}.attn.qkv[{','.join(parts)}]")
    return mods, handles, names
