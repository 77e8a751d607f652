#!/usr/bin/env python
"""Is data loading the bottleneck? Loader images/s (uncached vs decode-once cache) against model
inference images/s, on a 1k-image synthetic JPEG set read through the real ``image_folder`` loader.

    PYTHONPATH=src python benchmarks/loader_throughput.py [--images 1000] [--size 384x288] [--workers 0]

The loader runs as a training run runs it (``engine.loop.loader``, batch 64, the trainer's
default ``num_workers: 0``), with tf_efficientnet_lite0's own preprocessing (224 px, bicubic). The model figure
is eval-mode inference of tf_efficientnet_lite0 with random weights, batch 32; a frozen-backbone
method's training step is slower than that, so a loader faster than inference cannot be the bottleneck.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def synthetic_jpegs(root: Path, n: int, w: int, h: int, classes: int = 10) -> None:
    """Smooth colour fields with texture: JPEG sizes and decode cost like photos, not like noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    for i in range(n):
        c = i % classes
        low = rng.random((h // 16 + 1, w // 16 + 1, 3))
        tex = np.kron(low, np.ones((16, 16, 1)))[:h, :w]
        base = np.stack([xx * (c + 1) % 1, yy, (xx + yy) / 2], -1)
        img = (255 * (0.6 * base + 0.4 * tex)).astype(np.uint8)
        split = "val" if i < classes else "train"  # one val image per class; all n-classes others train
        path = root / split / f"c{c}" / f"{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path, quality=90)


def epoch_rate(dataset, workers: int, batch: int = 64) -> float:
    from apbench.engine.loop import loader as run_loader  # the DataLoader a run builds
    loader = run_loader(dataset, batch, True, 0, workers)
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    return n / (time.perf_counter() - t0)


def inference_rate(model, pre: dict, batch: int = 32, iters: int = 5) -> float:
    x = torch.randn(batch, *pre["input_size"])
    with torch.no_grad():
        for _ in range(2):
            model(x)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
    return batch * iters / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", default="384x288", help="synthetic JPEG width x height")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (the trainer's default is 0)")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))

    import timm

    from apbench import data
    from apbench.data import cache
    from apbench.models.preprocessing import resolve_preprocessing

    load0 = os.getloadavg()
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    pre = resolve_preprocessing(model)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        synthetic_jpegs(root / "bench", a.images + 10, w, h)
        print(f"wrote {a.images + 10} JPEGs of {w}x{h} in {time.perf_counter() - t0:.1f}s")
        cfg = {"name": "bench", "format": "image_folder", "path": "bench"}
        plain = data.build(cfg | {"cache": "none"}, pre, str(root))
        uncached = epoch_rate(plain.train, a.workers)
        t0 = time.perf_counter()
        cached_splits = data.build(cfg | {"cache": "memory"}, pre, str(root))
        fill = len(cached_splits.train) / (time.perf_counter() - t0)
        cached = epoch_rate(cached_splits.train, a.workers)
        cache._MEMORY.clear()
    threads = torch.get_num_threads()
    rates = {threads: inference_rate(model, pre)}
    torch.set_num_threads(1)  # on a shared, busy CPU one thread can beat several
    rates[1] = inference_rate(model, pre)
    torch.set_num_threads(threads)
    model_rate = max(rates.values())
    n = len(plain.train)
    print(f"load average before/after: {load0[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"preprocessing: {pre['input_size'][-1]} px {pre['interpolation']}; train images {n}; "
          f"DataLoader batch 64, num_workers {a.workers}; torch threads {threads}")
    print(f"loader, uncached (decode + resize every epoch): {uncached:8.1f} img/s")
    print(f"loader, memory cache, first pass (build):       {fill:8.1f} img/s")
    print(f"loader, memory cache, later epochs:             {cached:8.1f} img/s")
    for t, r in rates.items():
        print(f"model inference, tf_efficientnet_lite0 b32, {t} thread(s): {r:8.1f} img/s")
    print(f"ratio loader/model (the faster model figure): uncached {uncached / model_rate:.2f}x, cached {cached / model_rate:.2f}x; "
          f"cache speed-up {cached / uncached:.1f}x")


if __name__ == "__main__":
    main()
