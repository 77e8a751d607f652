"""GatedPromptTuning (Yoo et al., ICML 2023, "Improving Visual Prompt Tuning for Self-supervised Vision
Transformers"; reference: github.com/ryongithub/GatedPromptTuning, src/models/vit_prompt/vit_moco.py and
vit_mae.py at a9200bbb, defaults in src/configs/config.py at 1de14b5a, recipe in run.sh at a9200bbb).

VPT-shallow prompts plus two kinds of scalars per block, on an unmodified timm ``VisionTransformer``:

* ``num_tokens`` prompt tokens inserted once, right after the prefix tokens, before block 1 (a forward
  pre-hook), with dropout on the prompt while training; init uniform in +-sqrt(6 / (3 p_h p_w + D)) as VPT;
* a gate per block except the last (the reference's GATE_NUM = depth - 1): after block i the prompt
  rows become ``g_i * out + (1 - g_i) * in`` with ``g_i = sigmoid(gate_logit_i)``, gate logits
  initialised to ``-gate_init`` (so prompts start almost unchanged by the blocks and learn where to
  interact); the last block updates them freely;
* a learnable attention temperature per block (init 1, clamped to [0.01, 10] before every forward as
  the reference does): the attention logits are divided by it. It is applied by a forward hook on the
  block's ``attn.qkv`` that scales the query third of its output by 1 / temperature, which is the same
  logits whether timm uses its fused or its explicit attention; models with q/k normalization are
  refused (the norm would undo the scale).

The prompt rows are dropped before the final norm (as ``vpt``), so pooling sees the frozen model's
tokens: for class-token ViTs exactly the reference's ``original`` pooling of its MoCo-v3 model.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.layers import unwrap
from .base import Adapted, MethodError, freeze_all_but, register_method
from .blocks import select_blocks
from .vpt import init_range

TEMP_RANGE = (0.01, 10.0)  # the reference's TEMP_MIN / TEMP_MAX


class _PromptDropoutAdapted(Adapted):
    """The backbone stays in eval mode while training (frozen parts); the prompt dropout follows train()."""

    def train(self, mode: bool = True) -> "Adapted":
        super().train(mode)
        self.prompt_dropout.train(mode)
        return self


def check_attention(vit: nn.Module, method: str) -> None:
    for i, blk in enumerate(vit.blocks):
        attn = getattr(blk, "attn", None)
        if attn is None or not hasattr(attn, "qkv") or not hasattr(attn, "num_heads"):
            raise MethodError(f"{method}: block {i} has no timm Attention with a fused qkv projection "
                              f"({type(attn).__name__}); {method} supports timm VisionTransformer blocks")
        if not isinstance(getattr(attn, "q_norm", nn.Identity()), nn.Identity) or getattr(attn, "gate", None) is not None:
            raise MethodError(f"{method}: block {i}'s attention has q/k normalization or a gate, which this "
                              f"implementation does not cover; use a ViT without qk_norm")


@register_method("gated_prompt")
def gated_prompt(model, head_prefixes, num_tokens=100, gate_init=5.0, dropout=0.1, learn_temperature=True):
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or num_tokens <= 0:
        raise MethodError(f"gated_prompt num_tokens={num_tokens!r} must be a positive integer")
    if not 0 <= float(dropout) < 1:
        raise MethodError(f"gated_prompt dropout={dropout!r} must be in [0, 1)")
    vit = unwrap(model)
    check_attention(vit, "gated_prompt")
    points = select_blocks(vit, "all", "gated_prompt")
    head = freeze_all_but(model, head_prefixes)
    depth, dim, T, npt = len(vit.blocks), vit.embed_dim, num_tokens, vit.num_prefix_tokens
    device = vit.patch_embed.proj.weight.device

    bound = init_range(vit)
    prompt = torch.empty(1, T, dim, device=device)
    nn.init.uniform_(prompt, -bound, bound)
    params = nn.ParameterDict({"prompt": nn.Parameter(prompt),
                               "gate_logit": nn.Parameter(torch.full((depth - 1,), -float(gate_init), device=device))})
    if learn_temperature:
        params["temperature"] = nn.Parameter(torch.ones(depth, device=device))
    vit.apbench_gpt = params
    drop = nn.Dropout(float(dropout))
    vit.apbench_gpt_dropout = drop  # a submodule, so .to() and train() reach it; no parameters

    def insert(mod, args):
        x = args[0]
        p = drop(params["prompt"].to(x.dtype)).expand(x.shape[0], -1, -1)
        return (torch.cat([x[:, :npt], p, x[:, npt:]], dim=1), *args[1:])

    def gate(i):
        stash = {}

        def pre(mod, args):
            stash["in"] = args[0][:, npt:npt + T]

        def post(mod, args, out):
            g = torch.sigmoid(params["gate_logit"][i]).to(out.dtype)
            mixed = g * out[:, npt:npt + T] + (1 - g) * stash.pop("in")
            return torch.cat([out[:, :npt], mixed, out[:, npt + T:]], dim=1)
        return pre, post

    def temperature(i):
        def scale_q(mod, args, out):
            t = params["temperature"][i].to(out.dtype)
            q, kv = out[..., :out.shape[-1] // 3], out[..., out.shape[-1] // 3:]
            return torch.cat([q / t, kv], dim=-1)
        return scale_q

    def clamp(mod, args):
        with torch.no_grad():
            params["temperature"].clamp_(*TEMP_RANGE)

    def drop_prompts(mod, args):
        x = args[0]
        return (torch.cat([x[:, :npt], x[:, npt + T:]], dim=1), *args[1:])

    handles = [vit.blocks[0].register_forward_pre_hook(insert)]
    for i in range(depth - 1):
        pre, post = gate(i)
        handles += [vit.blocks[i].register_forward_pre_hook(pre), vit.blocks[i].register_forward_hook(post)]
    if learn_temperature:
        handles.append(vit.blocks[0].register_forward_pre_hook(clamp))
        handles += [vit.blocks[i].attn.qkv.register_forward_hook(temperature(i)) for i in range(depth)]
    handles.append(vit.norm.register_forward_pre_hook(drop_prompts))
    inserted = sum(p.numel() for p in params.values())
    adapted = _PromptDropoutAdapted(model, "gated_prompt", {"prompt": list(params.values()), "head": head},
                                    inserted=inserted, points=points, handles=handles,
                                    info={"num_tokens": T, "gate_init": float(gate_init), "gates": depth - 1,
                                          "dropout": float(dropout), "learn_temperature": bool(learn_temperature),
                                          "init_range": bound, "prompt_position": f"after {npt} prefix token(s)"})
    adapted.prompt_dropout = drop
    return adapted
