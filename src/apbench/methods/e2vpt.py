"""E2VPT without pruning (Han et al., ICCV 2023, "E^2VPT: An Effective and Efficient Approach for Visual
Prompt Tuning"; reference: github.com/ChengHan111/E2VPT, src/models/vit_prompt/vit_prompt_VK.py at
0a0bf8af and src/models/vit_backbones/vit_changeVK.py at 09026146, defaults in src/configs/config.py at
09026146 (MODEL.P_VK), recipe in configs/base-prompt_changed_P_VK.yaml at 3f73f16a).

Registered as ``e2vpt_no_pruning``: E2VPT's second stage -- scoring prompt tokens and token segments,
masking the lowest-scoring ones and rewinding (retraining from the initial values with the mask) -- is not
implemented. What is implemented, on an unmodified timm ``VisionTransformer``:

* visual prompts, deep: ``num_tokens_p`` tokens per block after the prefix tokens (exactly ``vpt``
  variant deep, whose hooks are reused; init uniform in +-sqrt(6 / (3 p_h p_w + D)) as the reference);
* key-value prompts, every block: ``num_tokens_kv`` learnable rows per head joined to that block's keys
  and values (before the token rows: the reference's LAYER_BEHIND = True; the order does not change
  attention). One tensor (heads x num_tokens_kv x head_dim) serves as both key and value prompt
  (SHARE_PARAM_KV = True), initialised with ``kaiming_uniform_(a=0, fan_in, leaky_relu)`` (ORIGIN_INIT = 2).

The key-value prompts need the attention's keys and values, which timm never exposes; the block's
``attn.forward`` is therefore replaced on the instance (not the class, not a copied model) by one that
runs the module's own qkv, scaled dot-product attention over [prompts; tokens] and its own ``proj``.
``Adapted.remove()`` restores it. Attention with q/k norm or a gate is refused.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models.layers import unwrap
from .base import MethodError, register_method
from .gated_prompt import check_attention
from .vpt import vpt


def kv_prompted_attention(attn: nn.Module, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """timm ``Attention.forward`` with ``kv`` (heads, T, head_dim) joined to the keys and values."""
    B, N, _ = x.shape
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    p = kv.to(x.dtype).unsqueeze(0).expand(B, -1, -1, -1)
    k, v = torch.cat([p, k], dim=2), torch.cat([p, v], dim=2)
    drop = attn.attn_drop.p if attn.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=attn.scale)
    out = out.transpose(1, 2).reshape(B, N, attn.num_heads * attn.head_dim)
    return attn.proj_drop(attn.proj(attn.norm(out)))


class _ForwardOverride:
    """Handle that undoes an instance-level ``forward`` replacement (as a hook handle's ``remove``)."""

    def __init__(self, module: nn.Module, forward):
        self.module = module
        module.forward = forward

    def remove(self) -> None:
        self.module.__dict__.pop("forward", None)


@register_method("e2vpt_no_pruning")
def e2vpt_no_pruning(model, head_prefixes, num_tokens_p=5, num_tokens_kv=5):
    for key, v in (("num_tokens_p", num_tokens_p), ("num_tokens_kv", num_tokens_kv)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise MethodError(f"e2vpt_no_pruning {key}={v!r} must be a positive integer")
    vit = unwrap(model)
    check_attention(vit, "e2vpt_no_pruning")
    adapted = vpt(model, head_prefixes, variant="deep", num_tokens=num_tokens_p, layers="all")
    device = vit.patch_embed.proj.weight.device
    kv = nn.ParameterDict()
    for i, blk in enumerate(vit.blocks):
        t = torch.empty(blk.attn.num_heads, num_tokens_kv, blk.attn.head_dim, device=device)
        nn.init.kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu")
        kv[str(i + 1)] = nn.Parameter(t)
    vit.apbench_e2vpt_kv = kv
    for i, blk in enumerate(vit.blocks):
        attn, p = blk.attn, kv[str(i + 1)]
        adapted.handles.append(_ForwardOverride(
            attn, lambda x, attn_mask=None, is_causal=False, attn=attn, p=p: _checked(attn, x, p, attn_mask, is_causal)))
    adapted.method = "e2vpt_no_pruning"
    adapted.param_groups["prompt"] = adapted.param_groups["prompt"] + list(kv.parameters())
    adapted.inserted += sum(t.numel() for t in kv.parameters())
    adapted.info.update({"num_tokens_p": num_tokens_p, "num_tokens_kv": num_tokens_kv, "share_kv": True,
                         "kv_init": "kaiming_uniform(a=0, fan_in, leaky_relu): bound "
                                    f"{math.sqrt(6 / (num_tokens_kv * vit.blocks[0].attn.head_dim)):.4g}",
                         "pruning": "none (E2VPT without pruning and rewinding)"})
    adapted.info.pop("num_tokens", None)
    return adapted


def _checked(attn, x, p, attn_mask, is_causal):
    if attn_mask is not None or is_causal:
        raise MethodError("e2vpt_no_pruning: attention masks are not supported (key-value prompts would need one)")
    return kv_prompted_attention(attn, x, p)
