#!/usr/bin/env python
"""How much does apbench's training loop cost over a minimal hand-written PyTorch loop?

    PYTHONPATH=src python benchmarks/bench_loop_overhead.py [--repeats 5]

Same model (tf_efficientnet_lite0, random weights, 64 px), same data (256 random images, batch 32,
shuffled), same method (AP at point 15 of 16), same optimizer (AdamW). The apbench side is one
``engine.loop.fit`` epoch (its DataLoader and collate, cosine schedule, finite-loss check, per-step
``loss.item()``, progress bar off); the hand loop is the textbook five lines. Target: <= 1.05x.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from apbench.engine.loop import TrainSettings, fit

from _common import adapted_model, interleaved, machine, median, setup


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--point", type=int, default=15)
    args = ap.parse_args()
    setup()
    adapted = adapted_model("tf_efficientnet_lite0", "ap", input_size=(3, 64, 64), layers=[args.point])
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(256, 3, 64, 64, generator=g), torch.randint(0, 10, (256,), generator=g))
    settings = TrainSettings(epochs=1, batch_size=32, lr=1e-3, warmup_epochs=0, progress=False)
    cpu = torch.device("cpu")

    def apbench_epoch():
        fit(adapted, data, cpu, settings, seed=0)

    def hand_epoch():
        model = adapted.model.eval()  # bn_mode eval, as fit runs it
        opt = torch.optim.AdamW(adapted.trainable(), lr=1e-3, weight_decay=1e-4)
        for x, y in DataLoader(data, batch_size=32, shuffle=True):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    apbench_epoch(), hand_epoch()  # warm-up: allocator, first-call costs
    times = interleaved({"apbench fit": apbench_epoch, "hand loop": hand_epoch}, args.repeats)
    print(machine())
    print(f"tf_efficientnet_lite0 64 px, AP at point {args.point}, 256 images, batch 32, 1 epoch, "
          f"{args.repeats} interleaved repeats (median)")
    for k, v in times.items():
        print(f"{k:>12}: {median(v):.3f} s/epoch   (all: {', '.join(f'{t:.3f}' for t in v)})")
    print(f"ratio apbench/hand: {median(times['apbench fit']) / median(times['hand loop']):.3f}x (target <= 1.05x)")


if __name__ == "__main__":
    main()
