"""Effective receptive field per point (Luo et al. 2016, "Understanding the Effective Receptive Field").

The gradient of the centre unit of the activation at a point (summed over channels; for token
sequences the patch token at the grid centre) with respect to the input pixels, its absolute value
summed over images and colour channels: a map of how much each input pixel moves that unit. One
number per point: the gradient-weighted RMS distance of the pixels from the map's centroid, in input
pixels (the standard deviation of the ERF, which Luo et al. show is Gaussian-like), and as a fraction
of the image side. Why this measure: it applies to every family alike (CNN maps and ViT tokens), needs
no labels or training, is in pixels like the ViT mean attention distance, and grows with how global a
point's features are -- the property the paper uses to explain AP's layer preference.
"""
from __future__ import annotations

import torch
from torch import nn

from ..methods.activation_prompt import channel_dim
from ..models.layers import Point, unwrap, register_point_hook


class _Stop(Exception):
    def __init__(self, t):
        self.t = t


def centre_unit(model: nn.Module, point: Point, act: torch.Tensor) -> torch.Tensor:
    """The scalar whose input gradient is the ERF: the centre position of ``act``, channels summed."""
    if act.dim() == 3:  # tokens x D
        vit = unwrap(model)
        gh, gw = vit.patch_embed.grid_size
        idx = getattr(vit, "num_prefix_tokens", 0) + (gh // 2) * gw + gw // 2
        return act[:, idx].sum()
    if act.dim() == 4:
        if channel_dim(model, point, tuple(act.shape[1:])) == 0:
            return act[:, :, act.shape[2] // 2, act.shape[3] // 2].sum()
        return act[:, act.shape[1] // 2, act.shape[2] // 2, :].sum()
    raise ValueError(f"point {point.key}: an activation of shape {tuple(act.shape)} has no spatial centre")


def gradient_map(model: nn.Module, point: Point, images: torch.Tensor) -> torch.Tensor:
    """(H, W) map of |d centre unit / d pixel|, summed over images and colour channels."""
    handle = register_point_hook(model, point, lambda t: (_ for _ in ()).throw(_Stop(t)))
    x = images.clone().requires_grad_(True)
    model.eval()
    try:
        with torch.enable_grad():
            try:
                model(x)
                raise RuntimeError(f"point {point.key} was not reached by the forward pass")
            except _Stop as s:
                act = s.t
            (g,) = torch.autograd.grad(centre_unit(model, point, act), x)
    finally:
        handle.remove()
    return g.abs().sum(dim=(0, 1)).to(torch.float64)


def rms_radius(gmap: torch.Tensor) -> float:
    """Gradient-weighted RMS distance (pixels) of the map's pixels from its weighted centroid."""
    h, w = gmap.shape
    total = gmap.sum()
    if total <= 0:
        return float("nan")
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    cy, cx = (gmap * ys).sum() / total, (gmap * xs).sum() / total
    return float(torch.sqrt((gmap * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum() / total))


def erf(model: nn.Module, points: list[Point], images: torch.Tensor) -> dict:
    out = {}
    for p in points:
        if p.kind == "input":
            continue
        r = rms_radius(gradient_map(model, p, images))
        out[p.key] = {"rms_px": r, "rms_rel": r / images.shape[-1]}
    return out
