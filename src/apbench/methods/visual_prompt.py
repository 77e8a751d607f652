"""Input-level visual prompting (VP): a learnable pattern on the pixels the frozen model sees.

Variants (all act in a forward pre-hook on the model, on the normalized input tensor):

* ``pad``       -- Bahng et al. (2022): a learnable border of width ``pad_width`` is added to the
  image; the centre is untouched. Parameters: 3·(H·W − (H−2p)·(W−2p)).
* ``expansive`` -- ILM-VP (Chen et al., 2023): the image is resized to ``inner_size`` and placed in
  the centre of the model's H×W canvas; the surround is the learnable prompt (zero = the dataset
  mean, since the canvas is in normalized space). Parameters: 3·(H·W − h·w).
* ``full``      -- an additive prompt over the whole image: the same as ``ap`` at point ``input``.

``bound=sigmoid`` (expansive only) is ILM-VP's program: the surround is ``sigmoid(prompt)`` in [0, 1]
pixel space, normalized with the model's mean and std like the image; ``bound=none`` keeps an
unbounded prompt in normalized space. ``init=randn`` is Bahng et al.'s PadPrompter (standard normal).
Difference from the papers, on purpose: the expansive resize happens after the data pipeline resized
to the canvas, so the image is resampled twice.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.layers import input_point, register_point_hook
from .base import Adapted, MethodError, freeze_all_but, register_method

VARIANTS = ("pad", "expansive", "full")
INITS = ("zeros", "randn")
BOUNDS = ("none", "sigmoid")


class Frame(nn.Module):
    """A learnable border (top, bottom, left, right widths) of a C×H×W canvas with a zero centre.

    Four pieces rather than a masked full tensor, so the parameter count is exactly the border's.
    """

    def __init__(self, channels: int, height: int, width: int, top: int, bottom: int, left: int, right: int):
        super().__init__()
        inner_h, inner_w = height - top - bottom, width - left - right
        if inner_h < 0 or inner_w < 0:
            raise MethodError(f"a border of {top}+{bottom} × {left}+{right} px does not fit a {height}×{width} input")
        self.inner = (inner_h, inner_w)
        self.top = nn.Parameter(torch.zeros(channels, top, width))
        self.bottom = nn.Parameter(torch.zeros(channels, bottom, width))
        self.left = nn.Parameter(torch.zeros(channels, inner_h, left))
        self.right = nn.Parameter(torch.zeros(channels, inner_h, right))

    def forward(self, piece=None) -> torch.Tensor:
        """The frame with ``piece`` (a map of the parameters, e.g. a bound) applied to its four parts."""
        f = piece or (lambda t: t)
        centre = self.top.new_zeros(self.top.shape[0], *self.inner)
        middle = torch.cat([f(self.left), centre, f(self.right)], dim=2)
        return torch.cat([f(self.top), middle, f(self.bottom)], dim=1)


class VisualPrompt(nn.Module):
    def __init__(self, variant: str, input_size, pad_width: int, inner_size, bound: str = "none",
                 mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
        super().__init__()
        c, h, w = input_size
        self.variant = variant
        self.bound = bound
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        if variant == "full":
            self.prompt = nn.Parameter(torch.zeros(c, h, w))
            return
        if variant == "pad":
            if not 0 < 2 * pad_width < min(h, w):
                raise MethodError(f"vp pad_width={pad_width} must be > 0 and leave a centre in the {h}×{w} input")
            self.frame = Frame(c, h, w, pad_width, pad_width, pad_width, pad_width)
            return
        ih, iw = (inner_size, inner_size) if isinstance(inner_size, int) else tuple(inner_size)
        if not (0 < ih <= h and 0 < iw <= w):
            raise MethodError(f"vp inner_size={inner_size} must fit inside the {h}×{w} input")
        self.inner_size = (ih, iw)
        top, left = (h - ih) // 2, (w - iw) // 2
        self.frame = Frame(c, h, w, top, h - ih - top, left, w - iw - left)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "full":
            return x + self.prompt
        if self.variant == "pad":
            return x + self.frame()
        # expansive: shrink the image into the centre of a zero canvas; the frame fills the surround.
        small = F.interpolate(x, size=self.inner_size, mode="bilinear", align_corners=False, antialias=True)
        f = self.frame
        canvas = F.pad(small, (f.left.shape[2], f.right.shape[2], f.top.shape[1], f.bottom.shape[1]))
        if self.bound == "sigmoid":  # pixel value sigmoid(p) in [0, 1], normalized as the image was
            return canvas + f(lambda t: (torch.sigmoid(t) - self.mean) / self.std)
        return canvas + f()


@register_method("vp")
def visual_prompt(model, head_prefixes, input_size, variant="pad", pad_width=30, inner_size=164, init="zeros",
                  bound="none"):
    if variant not in VARIANTS:
        raise MethodError(f"vp variant {variant!r} unknown; choose one of {VARIANTS}")
    if init not in INITS:
        raise MethodError(f"vp init {init!r} unknown; choose one of {INITS}")
    if bound not in BOUNDS:
        raise MethodError(f"vp bound {bound!r} unknown; choose one of {BOUNDS}")
    if bound == "sigmoid" and variant != "expansive":
        raise MethodError("vp bound=sigmoid is ILM-VP's expansive program; use it with method.variant=expansive")
    head = freeze_all_but(model, head_prefixes)
    ref = next(model.parameters())
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    vp = VisualPrompt(variant, tuple(input_size), pad_width, inner_size, bound,
                      mean=cfg.get("mean", (0.0, 0.0, 0.0)), std=cfg.get("std", (1.0, 1.0, 1.0)))
    if init == "randn":
        with torch.no_grad():
            for t in vp.parameters():
                t.normal_()
    model.apbench_vp = vp.to(ref.device, ref.dtype)
    handle = register_point_hook(model, input_point(), model.apbench_vp)
    prompt = list(model.apbench_vp.parameters())
    info = {"variant": variant, "init": init, "bound": bound} | ({"pad_width": pad_width} if variant == "pad" else {}) | (
        {"inner_size": list(model.apbench_vp.inner_size)} if variant == "expansive" else {})
    # bn_mode eval: VP's gradient flows through the whole frozen network; BN statistics stay put.
    return Adapted(model, "vp", {"prompt": prompt, "head": head}, inserted=sum(p.numel() for p in prompt),
                   bn_mode="eval", points=[input_point()], handles=[handle], info=info)
