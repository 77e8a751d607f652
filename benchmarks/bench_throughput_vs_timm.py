#!/usr/bin/env python
"""Does ``efficiency.inference_throughput`` agree with timm's own benchmark recipe?

    PYTHONPATH=src python benchmarks/bench_throughput_vs_timm.py [--batch 32] [--size 112]

The reference re-implements, in a few lines, what timm's ``benchmark.py`` does for inference: model
in eval mode, one fixed random batch, warm-up iterations, then timed iterations under
``torch.no_grad`` with a device synchronize before reading the clock, images/s = batch x iterations /
seconds. Both sides use the same model object, batch, warm-up (3) and timed iterations (10); the two
are run alternately 9 times. On a machine shared with other jobs single figures swing by tens of
percent, so both the medians and the best runs (least disturbed) are compared, and as a control the
images per CPU-second of this process (the work each loop does, whatever the load). Target: within 5%.
"""
from __future__ import annotations

import argparse
import time

import timm
import torch

from apbench.engine.efficiency import inference_throughput

from _common import machine, median, setup


def timm_style(model, batch: int, size: int, warmup: int, iters: int) -> float:
    x = torch.randn(batch, 3, size, size)
    model.eval()
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        t0 = time.perf_counter()  # CPU: nothing to synchronize (torch.cuda.synchronize() on a GPU)
        for _ in range(iters):
            model(x)
        seconds = time.perf_counter() - t0
    return batch * iters / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    setup()
    model = timm.create_model(args.model, pretrained=False)
    warmup, iters = 3, 10
    ours, ref, cpu = [], [], {"apbench": [], "timm": []}
    work = args.batch * (warmup + iters)
    for _ in range(args.repeats):
        c0 = time.process_time()
        ours.append(inference_throughput(model, args.batch, args.size, "cpu", warmup=warmup, iters=iters)["img_per_s"])
        c1 = time.process_time()
        ref.append(timm_style(model, args.batch, args.size, warmup, iters))
        cpu["apbench"].append(work / (c1 - c0))
        cpu["timm"].append(work / (time.process_time() - c1))
    print(machine())
    print(f"{args.model} {args.size} px, batch {args.batch}, fp32, warm-up {warmup}, {iters} timed iterations, "
          f"{args.repeats} alternating repeats")
    print(f"  apbench inference_throughput: {median(ours):7.1f} img/s  (all: {', '.join(f'{v:.1f}' for v in ours)})")
    print(f"  timm-style reference:         {median(ref):7.1f} img/s  (all: {', '.join(f'{v:.1f}' for v in ref)})")
    for what, a, b in (("median", median(ours), median(ref)), ("best", max(ours), max(ref))):
        print(f"ratio apbench/timm ({what}): {a / b:.3f} ({abs(a / b - 1) * 100:.1f}% apart; target within 5%)")
    a, b = median(cpu["apbench"]), median(cpu["timm"])
    print(f"control, images per CPU-second of this process (warm-up included; load-independent): "
          f"apbench {a:.1f}, timm-style {b:.1f}, ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
