#!/usr/bin/env python
"""AP at a deep block vs VP (AP at ``input``): training memory and step time, same everything else.

    PYTHONPATH=src python benchmarks/bench_ap_vs_vp.py [--size 112] [--batch 8]

Per model (random weights): ``efficiency.training_memory`` (bytes saved for backward, by storage,
parameters left out) and ``efficiency.train_step_throughput`` (forward + backward + AdamW step over
the trainable set). Both methods are the same additive full-shape prompt, only its point differs:
``input`` (VP) or the second-to-last block (tf_efficientnet_lite0 point 15 of 16, resnet50 point 15
of 16). Ratios are VP / AP: how many times more memory and time input-level prompting costs.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from apbench.engine.efficiency import train_step_throughput, training_memory

from _common import adapted_model, machine, setup

MB = 1e6


def measure(name: str, layers, size: int, batch: int, iters: int) -> dict:
    adapted = adapted_model(name, "ap", input_size=(3, size, size), layers=layers)
    model = adapted.model
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    mem = training_memory(model, x, y, F.cross_entropy, "adamw")
    speed = train_step_throughput(model, None, batch, size, "cpu", optimizer_name="adamw", warmup=2, iters=iters)
    return {"saved": mem["saved_activation_bytes"], "memory": mem["memory_bytes"], "step": speed["step_time_s"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    setup()
    print(machine())
    print(f"{args.size} px, batch {args.batch}, fp32, AdamW; step time = mean of {args.iters} steps after 2 warm-up")
    for name, deep in (("tf_efficientnet_lite0", 15), ("resnet50", 15)):
        vp = measure(name, ["input"], args.size, args.batch, args.iters)
        apm = measure(name, [deep], args.size, args.batch, args.iters)
        print(f"{name}:")
        print(f"  VP (input)      saved {vp['saved'] / MB:8.1f} MB  total {vp['memory'] / MB:8.1f} MB  "
              f"step {vp['step'] * 1e3:7.1f} ms")
        print(f"  AP (point {deep:2d})  saved {apm['saved'] / MB:8.1f} MB  total {apm['memory'] / MB:8.1f} MB  "
              f"step {apm['step'] * 1e3:7.1f} ms")
        print(f"  ratio VP/AP: saved activations {vp['saved'] / apm['saved']:.1f}x, "
              f"training memory {vp['memory'] / apm['memory']:.2f}x, step time {vp['step'] / apm['step']:.2f}x")


if __name__ == "__main__":
    main()
