"""Pretrain a small timm CNN or ViT from scratch on Fashion-MNIST and save it as bundled weights.

    PYTHONPATH=src python scripts/pretrain_fmnist.py --arch cnn --out src/apbench/assets/fmnist_cnn.pth
    PYTHONPATH=src python scripts/pretrain_fmnist.py --arch vit --out src/apbench/assets/fmnist_vit.pth

Trains on all 60,000 official training images (28 px -> 32 px bilinear, grayscale repeated to 3
channels, normalized with the training set's own mean/std) and reports top-1 on the official
10,000-image test set. The recipe is fixed in advance and identical for both models (no search), so
the test set is read once, for the report. Writes ``OUT`` (fp32 state dict) and ``OUT`` with
``.json`` (architecture, recipe, timings, accuracy). One epoch, sized for one shared CPU thread
(measured here: ~1 s per ViT step of 128 images under load, so ~9 minutes; the CNN ~1 minute).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F

from apbench.data.fashion_mnist import find_files, read_idx
from apbench.data.transforms import build_transform

# Two ~0.7M-parameter timm models of supported families (layers.py points work unchanged).
# CNN: ResNet-18 layout (BasicBlocks, 2 per stage) at 1/4 width -> 8 blocks; at 32 px the stem
# (stride-2 conv + max-pool) leaves an 8x8 map, the same grid as the ViT's 4-px patches. timm reads
# stem_width only for deep stems: this stem conv has 64 channels and layer1 projects them to 16.
ARCHS = {
    "cnn": ("resnet18", {"layers": [2, 2, 2, 2], "channels": [16, 32, 64, 128], "stem_width": 16,
                         "num_classes": 10}),
    "vit": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 4, "embed_dim": 96, "depth": 6,
                                     "num_heads": 3, "num_classes": 10}),
}
RECIPE = {"epochs": 1, "batch_size": 128, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05,
          "schedule": "cosine", "warmup_frac": 0.05, "augment": "none", "label_smoothing": 0.0}


def load_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    img, lab = find_files(None, split)
    x = torch.from_numpy(read_idx(img).copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
    return x, torch.from_numpy(read_idx(lab).astype(np.int64))


def stats_32px(images: torch.Tensor) -> tuple[float, float]:
    """Mean and std of the training pixels after the same 32-px resize the model will see."""
    ident = build_transform({"input_size": (3, 32, 32), "interpolation": "bilinear",
                             "mean": (0.0,) * 3, "std": (1.0,) * 3}, train=False)
    s = s2 = n = 0.0
    for i in range(0, len(images), 5000):
        v = ident(images[i:i + 5000])[:, 0].double()
        s, s2, n = s + v.sum().item(), s2 + (v * v).sum().item(), n + v.numel()
    mean = s / n
    return round(mean, 4), round(math.sqrt(s2 / n - mean * mean), 4)


@torch.no_grad()
def accuracy(model, images, labels, transform, bs=500) -> float:
    model.eval()
    hit = sum((model(transform(images[i:i + bs])).argmax(1) == labels[i:i + bs]).sum().item()
              for i in range(0, len(images), bs))
    return 100.0 * hit / len(images)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=sorted(ARCHS), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    ap.add_argument("--threads", type=int, default=1)  # 1 is fastest on a shared 2-core machine
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    recipe = dict(RECIPE, epochs=args.epochs)

    xtr, ytr = load_split("train")
    mean, std = stats_32px(xtr)
    pre = {"input_size": (3, 32, 32), "interpolation": "bilinear", "mean": (mean,) * 3, "std": (std,) * 3}
    transform = build_transform(pre, train=False)  # the project's own eval transform, batched
    name, kwargs = ARCHS[args.arch]
    model = timm.create_model(name, pretrained=False, **kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.arch}: {name} {kwargs} -> {n_params:,} params; mean {mean} std {std}", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    steps_per_epoch = len(xtr) // recipe["batch_size"]  # drop the last partial batch
    total = steps_per_epoch * recipe["epochs"]
    warm = max(1, int(recipe["warmup_frac"] * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
    gen = torch.Generator().manual_seed(args.seed)
    t0, step = time.perf_counter(), 0
    for epoch in range(recipe["epochs"]):
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        for b in range(steps_per_epoch):
            idx = order[b * recipe["batch_size"]:(b + 1) * recipe["batch_size"]]
            loss = F.cross_entropy(model(transform(xtr[idx])), ytr[idx],
                                   label_smoothing=recipe["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0 or step == total:
                print(f"epoch {epoch + 1} step {step}/{total} loss {loss.item():.3f} "
                      f"{time.perf_counter() - t0:.0f}s", flush=True)
    train_s = time.perf_counter() - t0

    xte, yte = load_split("test")
    test_top1 = accuracy(model, xte, yte, transform)
    print(f"{args.arch}: Fashion-MNIST test top-1 {test_top1:.2f}% after {train_s / 60:.1f} min", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, args.out)
    meta = {
        "arch": name, "kwargs": kwargs, "params": n_params, "seed": args.seed, **recipe,
        "train_images": len(xtr), "steps": total, "warmup_steps": warm,
        "preprocessing": {"image_size": 32, "interpolation": "bilinear", "mean": [mean] * 3, "std": [std] * 3,
                          "note": "28 px -> 32 px bilinear, gray repeated to 3 channels, (x/255 - mean)/std"},
        "train_time_s": round(train_s, 1), "threads": args.threads,
        "fmnist_test_top1": round(test_top1, 2), "test_images": len(xte),
        "torch": torch.__version__, "timm": timm.__version__,
        "command": "PYTHONPATH=src python scripts/pretrain_fmnist.py " + " ".join(sys.argv[1:]),
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
