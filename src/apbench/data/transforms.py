"""Image transforms built from the model's preprocessing (timm pretrained_cfg + overrides)."""
from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

_INTERP = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
           "nearest": InterpolationMode.NEAREST}


def build_transform(preprocessing: dict, train: bool, augment: str = "none") -> T.Compose:
    """Tensor uint8 (C,H,W) or PIL image in, normalized float tensor out.

    ``augment``: ``none`` -- plain resize to the model's input size (the VTAB-1k protocol);
    ``crop_flip`` -- resize, random crop and horizontal flip in training (VPT's FGVC recipe).
    Evaluation is always the plain resize, so train and eval see the same geometry.
    """
    size = tuple(preprocessing["input_size"][1:])
    interp = _INTERP.get(preprocessing.get("interpolation", "bilinear"), InterpolationMode.BILINEAR)
    ops = [T.ToImage()]
    if train and augment == "crop_flip":
        ops += [T.Resize([int(s * 256 / 224) for s in size], interpolation=interp, antialias=True),
                T.RandomCrop(size), T.RandomHorizontalFlip()]
    elif augment not in ("none", "crop_flip"):
        raise ValueError(f"augment {augment!r} unknown; choose none or crop_flip")
    else:
        ops += [T.Resize(size, interpolation=interp, antialias=True)]
    ops += [T.RGB(), T.ToDtype(torch.float32, scale=True),
            T.Normalize(mean=list(preprocessing["mean"]), std=list(preprocessing["std"]))]
    return T.Compose(ops)


def is_deterministic(augment: str) -> bool:
    """True when a training image always maps to the same tensor (a prefix cache is then exact)."""
    return augment == "none"
