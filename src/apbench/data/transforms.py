"""Image transforms built from the model's preprocessing (timm pretrained_cfg + overrides).

A transform is split in two stages so the cache can sit between them: ``pre`` decodes to a uint8
(3,H,W) tensor at the resize-before-crop size and is deterministic; ``post`` does what must run every
epoch (random crop/flip) and the float conversion. ``post(pre(x))`` is exactly what an uncached loader
computes, so a cached uint8 image gives bit-identical tensors.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

_INTERP = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
           "nearest": InterpolationMode.NEAREST}
AUGMENTS = ("none", "crop_flip")


@contextmanager
def serial():
    """One intra-op thread for per-image work. A 224 px image is above ATen's parallel grain, so each
    op would fan out to every thread; on a busy CPU waiting for them cost 30 ms per image here (vs
    1 ms serial). Parallelism for loading comes from DataLoader workers (which run single-threaded)."""
    n = torch.get_num_threads()
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


def collate(batch):
    """``default_collate`` on one thread: stacking 64 float 224 px images took 500 ms with 2 threads
    on a busy 2-core machine here, 22 ms with one. Use as a DataLoader's ``collate_fn``."""
    from torch.utils.data import default_collate
    with serial():
        return default_collate(batch)


class Pipeline:
    """``pre`` (deterministic, to uint8) then ``post`` (per epoch); ``key`` names what ``pre`` produces."""

    def __init__(self, pre: T.Compose, post: T.Compose, key: str):
        self.pre, self.post, self.key = pre, post, key

    def __call__(self, img) -> torch.Tensor:
        with serial():
            return self.post(self.pre(img)).as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"Pipeline({self.key})"


def build_transform(preprocessing: dict, train: bool, augment: str = "none") -> Pipeline:
    """Tensor uint8 (C,H,W) or PIL image in, normalized float tensor out.

    ``augment``: ``none`` -- plain resize to the model's input size (the VTAB-1k protocol);
    ``crop_flip`` -- resize, random crop and horizontal flip in training (VPT's FGVC recipe).
    Evaluation is always the plain resize, so train and eval see the same geometry.
    """
    if augment not in AUGMENTS:
        raise ValueError(f"augment {augment!r} unknown; choose none or crop_flip")
    size = tuple(preprocessing["input_size"][1:])
    name = preprocessing.get("interpolation", "bilinear")
    interp = _INTERP.get(name, InterpolationMode.BILINEAR)
    crop = train and augment == "crop_flip"
    resize = [int(s * 256 / 224) for s in size] if crop else list(size)
    pre = T.Compose([T.ToImage(), T.Resize(resize, interpolation=interp, antialias=True), T.RGB()])
    post = ([T.RandomCrop(size), T.RandomHorizontalFlip()] if crop else []) + [
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(mean=list(preprocessing["mean"]), std=list(preprocessing["std"]))]
    return Pipeline(pre, T.Compose(post), f"{resize[0]}x{resize[1]}-{name}")


def is_deterministic(augment: str) -> bool:
    """True when a training image always maps to the same tensor (a prefix cache is then exact)."""
    return augment == "none"
