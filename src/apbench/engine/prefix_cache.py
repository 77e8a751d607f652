"""Prefix cache: run the frozen part of the network once per image, train on the rest.

When nothing trainable acts before a point ``k`` (checked by autograd, not by method name), BN runs
with frozen statistics (``bn_mode == "eval"``) and the training images are the same tensors every
epoch, the activation at ``k`` is a constant of each image. It is computed once (``no_grad``, eval
mode, the run's AMP), kept as a tensor dataset, and the model runs only its suffix from ``k`` while
the cache is active (``models.suffix.as_suffix``: same model object, same parameters and hooks).

    cache = prepare(adapted, {"train": ds, "val": ds_val}, deterministic=True, device=dev)
    with cache.active(adapted):
        fit(adapted, cache.sets["train"], ...)

With ``store_dir`` the activations are also kept on disk and reused by later runs that would compute
exactly the same ones (the other grid points and seeds of a sweep): see ``engine.prefix_store``.

Without a valid point, ``prepare`` returns a cache that is off (``info["reason"]`` says why) whose
``sets`` are the datasets given and whose ``active`` does nothing, so callers need no branches.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch.utils.data import Dataset, TensorDataset

from ..models.layers import Point, unwrap, block_points
from ..models.suffix import as_suffix, bypassed_hooks, run_prefix, hooked_descendants
from .step import model_device, modes_restored
from .loop import amp_context, loader  # the loop's own loader: same items, same collate
from .prefix_store import PrefixStore, lookup_or_build, model_fingerprint

MODES = ("auto", "off")
GB = 1024 ** 3


def normalize_mode(mode) -> str:
    """``auto`` or ``off``; YAML reads a bare ``off`` as ``False`` (and ``on`` as ``True``)."""
    mode = {False: "off", True: "auto"}.get(mode, mode) if isinstance(mode, bool) else str(mode)
    if mode not in MODES:
        raise ValueError(f"trainer.prefix_cache={mode!r} is not valid; choose one of: {', '.join(MODES)}")
    return mode


@dataclass
class PrefixCache:
    info: dict
    sets: dict[str, Dataset]
    point: Point | None = None
    dtype: torch.dtype | None = field(default=None, repr=False)  # the model's dtype, for fp16 caches

    @property
    def used(self) -> bool:
        return bool(self.info["used"])

    def active(self, adapted):
        """Context in which ``adapted.model`` takes cached activations instead of images."""
        return as_suffix(adapted.model, self.point, self.dtype) if self.used else nullcontext(adapted.model)


def _off(reason: str, sets, **extra) -> PrefixCache:
    return PrefixCache({"used": False, "reason": reason, "point": None, "bytes": 0, "build_time_s": 0.0}
                       | extra, dict(sets))


def choose_point(adapted, input_size) -> tuple[Point | None, str, tuple[int, ...] | None]:
    """The deepest stem/block point with nothing trainable before it, and the activation shape there.

    One batch-1 forward with gradients on: an activation at ``k`` (read before ``k``'s own hooks)
    that does not require grad proves no trainable parameter, prompt, adapter or LoRA factor acts
    before it, whatever the method.
    """
    if any(p.kind == "input" for p in adapted.points):
        return None, "the method acts at the pixel input (point 'input'): there is no frozen prefix to cache", None
    model = adapted.model
    points = block_points(model)
    needs_grad: dict[int, bool] = {}
    shapes: dict[int, tuple] = {}
    handles = []
    for p in points:
        def grab(mod, args, out, i=p.index):
            needs_grad.setdefault(i, bool(out.requires_grad))
            shapes.setdefault(i, tuple(out.shape[1:]))
        handles.append(p.module(unwrap(model)).register_forward_hook(grab, prepend=True))
    device = model_device(model)
    try:
        with modes_restored(model), torch.enable_grad():
            adapted.eval()
            adapted.logits(torch.zeros(1, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    k = None
    for p in points:
        if needs_grad.get(p.index, True) or hooked_descendants(model, p):
            break  # something trainable acts here, or inside this block, hooks the replay would miss
        k = p
    if k is None:
        return None, ("trainable parameters act before point 0 (the stem output): "
                      "the whole network needs the input every step"), None
    skipped = bypassed_hooks(model, k)
    if skipped:
        return None, f"hooks on {skipped} would be skipped by the prefix/suffix split", None
    return k, "ok", shapes[k.index]


def decide(adapted, *, deterministic: bool, mode: str = "auto",
           input_size=None) -> tuple[Point | None, str, tuple[int, ...] | None]:
    """Whether this run gets a prefix cache: ``(point, "ok", activation shape)``, or ``(None, why
    not, None)``. ``prepare`` acts on it; ``apbench plan`` uses it to cost a run the same way."""
    if normalize_mode(mode) == "off":
        return None, "trainer.prefix_cache=off", None
    if adapted.bn_mode != "eval":
        return None, (f"bn_mode={adapted.bn_mode}: the frozen part changes (BN statistics update) "
                      "during training"), None
    if not deterministic:
        return None, ("the training pipeline is random (augmentation): an image's prefix output "
                      "differs every epoch"), None
    if input_size is None:
        input_size = getattr(adapted.model, "pretrained_cfg", {}).get("input_size", (3, 224, 224))
    return choose_point(adapted, tuple(input_size))


def prepare(adapted, datasets: Mapping[str, Dataset | None], *, deterministic: bool, mode: str = "auto",
            max_gb: float = 4.0, input_size=None, batch_size: int = 128, amp: str = "none",
            device: torch.device | str | None = None, store_dir: str | None = None) -> PrefixCache:
    """Decide whether a prefix cache is valid for this run and, if so, build it for ``datasets``
    (``None`` entries are skipped: e.g. a test split a non-final run never opens).

    ``store_dir``: load each split's activations from there when an earlier run saved exactly these
    (``engine.prefix_store``), and save them there otherwise."""
    sets = {name: ds for name, ds in datasets.items() if ds is not None}
    point, reason, shape = decide(adapted, deterministic=deterministic, mode=mode, input_size=input_size)
    if point is None:
        return _off(reason, sets)

    model_dtype = next(adapted.model.parameters()).dtype
    count = sum(len(ds) for ds in sets.values())
    per_image = int(torch.Size(shape).numel())
    full = count * per_image * torch.empty((), dtype=model_dtype).element_size()
    budget = float(max_gb) * GB
    store = model_dtype
    if full > budget:
        half = count * per_image * 2
        if model_dtype.itemsize <= 2 or half > budget:
            return _off(f"the cache at point {point.key} would need {full / GB:.2f} GB ({half / GB:.2f} GB "
                        f"in fp16) for {count} images, over trainer.prefix_cache_max_gb={max_gb}",
                        sets, point=point.key, estimate_bytes=full)
        store = torch.float16  # over budget at full precision: halve it, exactness traded for fitting

    device = torch.device(device) if device is not None else model_device(adapted.model)
    disk = PrefixStore(store_dir) if store_dir else None
    fingerprint = model_fingerprint(adapted.model) if disk else None
    built, times, stored = {}, {}, {}
    for name, ds in sets.items():
        t0 = time.perf_counter()
        build = lambda ds=ds: _build(adapted, ds, point, store, batch_size, amp, device)  # noqa: E731
        if disk is None:
            built[name] = build()
        else:  # hashing the inputs and reading the entry count as build time: they are what the run pays
            built[name], stored[name] = lookup_or_build(
                disk, fingerprint, loader(ds, batch_size, False, 0, 0), build, point=point.key, dtype=store,
                amp=amp, batch_size=batch_size, device=device)
        times[name] = time.perf_counter() - t0
    nbytes = sum(t.tensors[0].numel() * t.tensors[0].element_size() for t in built.values())
    info = {"used": True, "reason": "ok" if store == model_dtype else
            f"fp16: {full / GB:.2f} GB at full precision is over trainer.prefix_cache_max_gb={max_gb}",
            "point": point.key, "bytes": nbytes, "build_time_s": sum(times.values()),
            "build_time_by_split_s": times, "dtype": str(store).replace("torch.", ""),
            "shape": list(shape), "images": {n: len(d) for n, d in built.items()}}
    if disk is not None:
        info["store"] = {"dir": str(disk.root), "splits": stored}
    return PrefixCache(info, built, point, model_dtype if store != model_dtype else None)


@torch.no_grad()
def _build(adapted, ds: Dataset, point: Point, store: torch.dtype, batch_size: int, amp: str,
           device: torch.device) -> TensorDataset:
    acts, labels = [], []
    with modes_restored(adapted.model):
        adapted.eval()
        for x, y in loader(ds, batch_size, False, 0, 0):
            with amp_context(device, amp):
                a = run_prefix(adapted.model, x.to(device, non_blocking=True), point)
            acts.append(a.to("cpu", store))  # host memory: the device keeps room for the suffix
            labels.append(torch.as_tensor(y))
    return TensorDataset(torch.cat(acts), torch.cat(labels))
