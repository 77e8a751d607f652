"""Shared bits of the ratio benchmarks: one thread, random-weight models, interleaved repeats."""
from __future__ import annotations

import os
import statistics
import time

import timm
import torch

from apbench import methods


def setup(threads: int = 1) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} torch thread(s), "
            f"{os.cpu_count()} cores, load average {load:.1f}")


def adapted_model(name: str, method: str, num_classes: int = 10, **kwargs):
    model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    return methods.apply(model, method, **kwargs)


def interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each ``fn()``, run A B A B ...: a loaded machine's drift hits both sides alike."""
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t0)
    return out


def median(xs) -> float:
    return statistics.median(xs)
