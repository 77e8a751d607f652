"""Parameter counts: total, trainable, trainable outside the classification head."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..models.naming import under_prefixes


def count_params(model: nn.Module, head_prefixes: Sequence[str], inserted: int = 0) -> dict:
    """``total``, ``trainable``, ``trainable_no_head`` and ``inserted`` (passed through, elements).

    ``inserted`` is what the method added to the network (prompts, adapters, LoRA factors); the method
    knows it, a generic count does not. Tied parameters are counted once, under their first name.
    """
    total = trainable = trainable_no_head = 0
    for name, p in model.named_parameters():  # remove_duplicate=True: each tied tensor once
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
            if not under_prefixes(name, head_prefixes):
                trainable_no_head += n
    return {"total": total, "trainable": trainable, "trainable_no_head": trainable_no_head,
            "inserted": int(inserted)}


def effective_params(forward, trainable: Sequence[nn.Parameter], input_size: Sequence[int],
                     device="cpu", batch_size: int = 4, seed: int = 0) -> int:
    """Trainable entries that can receive a gradient at all ("effective"; the nominal count is ``trainable``).

    Excludes structurally dead entries, e.g. a per-token prompt on patch tokens after the last ViT
    block when the head reads only the class token. Zero-initialized factors (LoRA B, adapter
    up-projections, prompts) would hide their partners' gradients at initialization, so every
    trainable tensor is temporarily given a small random value; an entry counts when its gradient is
    non-zero on either of two random batches. The parameters are restored bit-exactly afterwards.
    """
    import torch

    params = list(trainable)
    if not params:
        return 0
    saved = [p.detach().clone() for p in params]
    reached = [torch.zeros_like(p, dtype=torch.bool) for p in params]
    g = torch.Generator(device="cpu").manual_seed(seed)
    try:
        with torch.no_grad():
            for p in params:
                p.add_(0.01 * torch.randn(p.shape, generator=g).to(p))
        for _ in range(2):
            x = torch.randn(batch_size, *input_size, generator=g).to(device)
            with torch.enable_grad():
                out = forward(x)
                weights = torch.randn(out.shape, generator=g).to(out)
                grads = torch.autograd.grad((out * weights).sum(), params, allow_unused=True)
            for r, gr in zip(reached, grads):
                if gr is not None:
                    r |= gr != 0
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
    return int(sum(r.sum().item() for r in reached))
