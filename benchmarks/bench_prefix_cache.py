#!/usr/bin/env python
"""Prefix cache on vs off: wall clock of a whole training run and the accuracy it reaches.

    PYTHONPATH=src python benchmarks/bench_prefix_cache.py [--epochs 10] [--size 32]

tf_efficientnet_lite0 (random weights), AP at point 15 and at point 16 (of 16), 256 training + 128 validation images at
32 px whose classes are learnable (each class adds its own fixed pattern to noise), 10 epochs of
batch 32, AdamW. Each side is timed from start to its validation accuracy: "on" builds the cache
(train + val, one prefix pass each), trains and evaluates on cached val; "off" trains and evaluates
on images. Wall clock and this process's CPU time are both shown: on a loaded machine the CPU time
is the steadier of the two. Target: >= 5x, equal accuracy.

Then the same "on" run twice with ``store_dir`` (``trainer.prefix_cache_dir``): the first run of a sweep
computes and saves the activations ("store cold"), every later run with the same frozen prefix and
images (the other grid points and seeds) loads them ("store warm").
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.utils.data import TensorDataset

from apbench.engine import prefix_cache
from apbench.engine.loop import TrainSettings, evaluate, fit

from _common import adapted_model, machine, setup


def dataset(n: int, size: int, seed: int) -> TensorDataset:
    patterns = torch.randn(10, 3, size, size, generator=torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    return TensorDataset(torch.randn(n, 3, size, size, generator=g) + 1.5 * patterns[y], y)


def run(mode: str, point: int, args, store_dir=None) -> dict:
    torch.manual_seed(0)
    adapted = adapted_model(args.model, "ap", input_size=(3, args.size, args.size), layers=[point])
    train, val = dataset(256, args.size, 0), dataset(128, args.size, 1)
    settings = TrainSettings(epochs=args.epochs, batch_size=32, lr=3e-3, warmup_epochs=0, progress=False)
    cpu = torch.device("cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    cache = prefix_cache.prepare(adapted, {"train": train, "val": val}, deterministic=True, mode=mode,
                                 input_size=(3, args.size, args.size), batch_size=128, store_dir=store_dir)
    with cache.active(adapted):
        out = fit(adapted, cache.sets["train"], cpu, settings, seed=0)
        acc = evaluate(adapted, cache.sets["val"], cpu)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return {"s": seconds, "cpu": cpu_s, "acc": acc, "loss": out["train_loss"], "info": cache.info}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tf_efficientnet_lite0", help="timm model name (random weights)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--points", type=int, nargs="+", default=[15, 16])
    args = ap.parse_args()
    setup()
    print(machine())
    print(f"{args.model} {args.size} px, 256 train / 128 val images, {args.epochs} epochs, batch 32")
    for point in args.points:
        off, on = run("off", point, args), run("auto", point, args)
        with tempfile.TemporaryDirectory() as store:  # a sweep's first run fills the store, the next ones read it
            cold, warm = run("auto", point, args, store), run("auto", point, args, store)
        assert not any(s["hit"] for s in cold["info"]["store"]["splits"].values())
        assert all(s["hit"] for s in warm["info"]["store"]["splits"].values())
        info = on["info"]
        print(f"AP at point {point}: cache used={info['used']} at point {info['point']}, {info['bytes'] / 1e6:.2f} MB "
              f"{info['dtype']}, built in {info['build_time_s']:.2f} s")
        rows = (("off", off), ("on", on), ("on, store cold", cold), ("on, store warm", warm))
        for k, r in rows:
            print(f"  cache {k:>14}: {r['s']:6.2f} s wall, {r['cpu']:6.2f} s CPU (build + train + val)  "
                  f"val top-1 {r['acc']:.2f}%  final train loss {r['loss']:.6f}")
        print(f"  speed-up off/on: {off['s'] / on['s']:.1f}x wall, {off['cpu'] / on['cpu']:.1f}x CPU (target >= 5x); "
              f"val top-1 equal: "
              f"{off['acc'] == on['acc']}; |train loss diff| {abs(off['loss'] - on['loss']):.1e}")
        print(f"  speed-up off/warm store (a sweep's later runs): {off['s'] / warm['s']:.1f}x wall, "
              f"{off['cpu'] / warm['cpu']:.1f}x CPU; val top-1 equal: {off['acc'] == warm['acc']}; "
              f"|train loss diff| {abs(off['loss'] - warm['loss']):.1e}")


if __name__ == "__main__":
    main()
