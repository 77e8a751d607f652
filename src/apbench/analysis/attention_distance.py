"""Mean attention distance per ViT block and head (Dosovitskiy et al. 2021, Fig. 7; Raghu et al. 2021).

For every query patch, the attention-weighted mean distance (in input pixels) to the key patches,
averaged over query patches and images. Prefix tokens (class, register) have no position in the image:
their rows and columns are dropped and each query's weights are renormalized over the patch keys, so the
figure is the expected distance *given* that the head attends to a patch (without renormalizing, mass on
the class token would count as distance 0 and pull the value towards 0).

Reading the weights: timm's ``Attention`` runs ``F.scaled_dot_product_attention`` when ``fused_attn`` is
set and never materializes the weights; with it switched off it computes ``softmax(q k^T)`` and passes
it through ``attn_drop`` (identity in eval), where a forward hook reads it. Both are restored afterwards.
The patch grid and patch size come from the model's own ``patch_embed``.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def patch_distances(grid: tuple[int, int], patch: tuple[int, int]) -> torch.Tensor:
    """(P x P) Euclidean distances in pixels between the centres of the patches of a row-major grid."""
    gh, gw = grid
    ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float64) * patch[0],
                            torch.arange(gw, dtype=torch.float64) * patch[1], indexing="ij")
    pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=1)
    return torch.cdist(pos, pos)


def mean_attention_distance(attn: torch.Tensor, grid: tuple[int, int], patch: tuple[int, int],
                            num_prefix: int) -> torch.Tensor:
    """``attn``: (B, heads, N, N) softmax weights, N = num_prefix + grid_h * grid_w.
    Returns the per-head distance summed over the B images (heads,), and B, so batches add up."""
    b, h, n, _ = attn.shape
    p = grid[0] * grid[1]
    if n != num_prefix + p:
        raise ValueError(f"attention over {n} tokens, expected {num_prefix} prefix + {p} patch tokens")
    a = attn[:, :, num_prefix:, num_prefix:].to(torch.float64)
    a = a / a.sum(-1, keepdim=True).clamp_min(1e-12)
    d = patch_distances(grid, patch).to(a.device)
    per_query = (a * d).sum(-1)             # (B, heads, P)
    return per_query.mean(-1).sum(0)       # (heads,) summed over images


@contextmanager
def attention_weights(vit: nn.Module):
    """Inside the block: ``store[k]`` collects (B, heads, N, N) weights of block k (0-based) per forward."""
    store: dict[int, list[torch.Tensor]] = {}
    saved, handles = [], []
    for k, blk in enumerate(vit.blocks):
        attn = blk.attn
        if not hasattr(attn, "attn_drop") or not hasattr(attn, "fused_attn"):
            raise ValueError(f"block {k}'s attention ({type(attn).__name__}) exposes no attention weights "
                             "(needs timm's Attention with fused_attn and attn_drop)")
        saved.append((attn, attn.fused_attn))
        attn.fused_attn = False
        handles.append(attn.attn_drop.register_forward_hook(
            lambda mod, args, out, k=k: store.setdefault(k, []).append(out.detach())))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
        for attn, fused in saved:
            attn.fused_attn = fused


def grid_of(vit: nn.Module) -> tuple[tuple[int, int], tuple[int, int]]:
    pe = vit.patch_embed
    return tuple(pe.grid_size), tuple(pe.patch_size)
