"""Activations at points: flattened (for CKA) and pooled (for probes), one forward per batch."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..data import collate
from ..methods.activation_prompt import channel_dim
from ..models.layers import Point, unwrap, register_point_hook


def pool(model: nn.Module, point: Point, t: torch.Tensor) -> torch.Tensor:
    """(B, C): the mean over space for maps (NCHW or Swin's NHWC), over the *patch* tokens for token
    sequences (as timm's ``avg`` pooling: prefix tokens skipped; at point 0 the class token is one
    constant for every image and would say nothing), the tensor itself when already (B, C)."""
    if t.dim() == 2:
        return t
    if t.dim() == 3:
        return t[:, getattr(unwrap(model), "num_prefix_tokens", 0):].mean(1)
    d = channel_dim(model, point, tuple(t.shape[1:])) + 1
    dims = [i for i in range(1, t.dim()) if i != d]
    return t.mean(dims)


def first(dataset: Dataset, n: int | None) -> Dataset:
    return dataset if n is None or n >= len(dataset) else Subset(dataset, range(n))


@torch.no_grad()
def collect(model: nn.Module, points: list[Point], dataset: Dataset, device, batch_size: int,
            flat_images: int | None, flat_pooled: bool = False) -> dict:
    """``{"pooled": {key: (n, C)}, "flat": {key: (m, d)}, "labels": (n,)}`` over ``dataset`` in order;
    ``flat`` holds the first ``flat_images`` images only (0: none), pooled instead of flattened with
    ``flat_pooled``. Everything lands on the CPU in float32."""
    pooled = {p.key: [] for p in points}
    flat = {p.key: [] for p in points}
    seen = {"n": 0}
    limit = len(dataset) if flat_images is None else flat_images

    def grab(p):
        def fn(t):
            pt = pool(model, p, t).float().cpu()
            pooled[p.key].append(pt)
            room = limit - seen["n"]
            if room > 0:
                f = pt if flat_pooled else t.reshape(t.shape[0], -1).float().cpu()
                flat[p.key].append(f[:room])
            return t
        return fn

    handles = [register_point_hook(model, p, grab(p)) for p in points]
    labels = []
    model.eval()
    try:
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
            model(x.to(device))
            seen["n"] += x.shape[0]
            labels.append(y)
    finally:
        for h in handles:
            h.remove()
    cat = lambda d: {k: torch.cat(v) for k, v in d.items() if v}
    return {"pooled": cat(pooled), "flat": cat(flat), "labels": torch.cat(labels)}


def images_of(dataset: Dataset, n: int) -> torch.Tensor:
    xs = [dataset[i][0] for i in range(min(n, len(dataset)))]
    return torch.stack(xs)
