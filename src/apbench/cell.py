"""The work of one run, once its config is valid: fills ``record`` in place."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import data, methods
from .engine.loop import evaluate, fit
from .engine.seeding import seed_everything
from .env import environment, resolve_device
from .models.factory import build_model
from .validate import METHOD_RESERVED


def count_params(model: torch.nn.Module, head_prefixes) -> dict:
    is_head = lambda n: any(n == h or n.startswith(h + ".") for h in head_prefixes)
    named = list(model.named_parameters())
    return {"total": sum(p.numel() for _, p in named),
            "trainable": sum(p.numel() for _, p in named if p.requires_grad),
            "trainable_no_head": sum(p.numel() for n, p in named if p.requires_grad and not is_head(n))}


def execute(cfg: DictConfig, facts: dict, run_dir: Path, record: dict) -> None:
    device = resolve_device(cfg.device)
    record["env"] = environment(device)
    seed_everything(cfg.seed)
    settings = facts["settings"]
    settings.progress = bool(cfg.trainer.get("progress", True))

    built = build_model(OmegaConf.to_container(cfg.model, resolve=True), device)
    record["weights"] = built.weights
    model, pre = built.model, built.preprocessing

    splits = data.build(OmegaConf.to_container(cfg.dataset, resolve=True), pre, cfg.paths.data_root)
    record["data"] = dict(splits.info)

    m = OmegaConf.to_container(cfg.method, resolve=True)
    # The head axis: a new classifier, or the frozen source one (optionally behind a label map).
    head = methods.setup_head(model, m.get("head", "linear"), splits.num_classes, seed=cfg.seed)
    args = {k: v for k, v in m.items() if k not in METHOD_RESERVED}
    adapted = methods.apply(model, m["name"], input_size=pre["input_size"], head_prefixes=head.prefixes, **args)
    head.attach(adapted)
    record["bn_mode"] = adapted.bn_mode
    record["params"] = count_params(model, head.prefixes) | {"inserted": adapted.inserted}

    t0 = time.perf_counter()
    out = fit(adapted, splits.train, device, settings, cfg.seed, checkpoint_path=run_dir / "checkpoint.pt")
    train_time = time.perf_counter() - t0
    record["history"] = out["history"]
    record["label_map"] = adapted.info.get("label_map")  # label_map[target] = source class; frozen from here on
    record["label_map_history"] = adapted.info.get("label_map_history")
    record["resumed_from_epoch"] = out["resumed_from"]
    metrics = {"train_loss": out["train_loss"]}
    metrics["val_top1"] = evaluate(adapted, splits.val, device, settings.eval_batch_size, settings.amp, "val")
    if cfg.protocol.stage == "final":  # only final runs ever open the test split
        metrics["test_top1"] = evaluate(adapted, splits.test(), device, settings.eval_batch_size, settings.amp, "test")
    else:
        metrics["test_top1"] = None
    record["metrics"] = metrics
    record["efficiency"] = {"train_time_s": train_time, "epoch_time_s": train_time / max(1, settings.epochs - out["resumed_from"]),
                            "batch_size": settings.batch_size, "image_size": pre["input_size"][-1],
                            "precision": settings.amp if settings.amp != "none" else "fp32"}
