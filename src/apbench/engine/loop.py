"""The training loop and evaluation. Knows neither the method nor the dataset."""
from __future__ import annotations

import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .optim import lr_factor, make_optimizer, make_scheduler
from .seeding import rng_state, seed_worker, set_rng_state


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite; the run is recorded as failed."""


@dataclass
class TrainSettings:
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 1e-3
    head_lr: float | None = None      # the new head's group; None = lr
    weight_decay: float = 1e-4
    momentum: float = 0.9
    scheduler: str = "cosine"
    warmup_epochs: float = 0.0
    milestones: list = field(default_factory=list)   # multistep: fractions of the schedule
    gamma: float = 0.1
    lr_scaling: str = "none"          # none | linear (every lr x batch_size / 256)
    label_smoothing: float = 0.0
    amp: str = "none"
    num_workers: int = 0
    grad_clip: float | None = None
    lr_scale: dict = field(default_factory=dict)
    progress: bool = True


def amp_context(device: torch.device, amp: str):
    if amp == "none":
        return nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    from ..data import collate  # single-threaded batching: see apbench.data.transforms.collate
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=num_workers,
                      collate_fn=collate,
                      worker_init_fn=seed_worker, drop_last=False, persistent_workers=False)


@torch.no_grad()
def evaluate(adapted, dataset: Dataset, device: torch.device, batch_size: int = 128, amp: str = "none",
             desc: str = "eval", progress: bool = False, predictions: list | None = None) -> float:
    """Top-1 accuracy in percent. ``predictions``: a list that receives ``(predicted, true)`` class
    tensors per batch, in the dataset's order (final runs store them, ``results.predictions``)."""
    return evaluate_with_loss(adapted, dataset, device, batch_size, amp, desc, progress, predictions)["top1"]


@torch.no_grad()
def evaluate_with_loss(adapted, dataset: Dataset, device: torch.device, batch_size: int = 128,
                       amp: str = "none", desc: str = "eval", progress: bool = False,
                       predictions: list | None = None) -> dict:
    """``{"top1": percent, "loss": mean cross-entropy}`` (the loss breaks ties between val scores)."""
    adapted.eval()
    correct = total = 0
    loss_sum = 0.0
    for x, y in tqdm(loader(dataset, batch_size, False, 0, 0), desc=desc, leave=False, disable=not progress,
                     file=sys.stderr):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with amp_context(device, amp):
            logits = adapted.logits(x)
        pred = logits.argmax(-1)
        correct += (pred == y).sum().item()
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        if predictions is not None:
            predictions.append((pred.cpu(), y.cpu()))
        total += y.numel()
    return {"top1": 100.0 * correct / max(1, total), "loss": loss_sum / max(1, total)}


def fit(adapted, train_set: Dataset, device: torch.device, s: TrainSettings, seed: int,
        checkpoint_path: Path | None = None, on_epoch: Callable[[dict], None] | None = None,
        timer=None, identity: str | None = None, extra_state=None,
        evaluate_epoch: Callable[[], dict] | None = None) -> dict:
    """Train ``adapted``'s trainable set; resume from ``checkpoint_path`` when it holds a valid checkpoint.

    ``identity``: the run's identity digest, written into each checkpoint; a checkpoint without the
    same one is not resumed from (``engine.checkpoint.load``). ``extra_state``: ``(get, set)`` of
    state outside the model that training depends on (a head's label map), saved and restored with it.
    ``evaluate_epoch()``: held-out scores added to each epoch's history entry (select runs: the
    learning curve).

    Returns ``{"history": [...], "train_loss": float, "resumed_from": int,
    "optimizer": {"name", "groups": {group: starting lr}, "scheduler", "warmup_steps", "total_steps", ...}}``.
    """
    model = adapted.model
    optimizer = make_optimizer(adapted.param_groups, s.optimizer, s.lr, s.weight_decay, s.momentum, s.lr_scale,
                               head_lr=s.head_lr, factor=lr_factor(s.lr_scaling, s.batch_size))
    steps_per_epoch = math.ceil(len(train_set) / s.batch_size)
    total = steps_per_epoch * s.epochs
    warmup_steps = int(round(s.warmup_epochs * steps_per_epoch))
    starting_lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}  # before a warm-up scheduler scales them
    scheduler = make_scheduler(optimizer, s.scheduler, total, warmup_steps, s.milestones, s.gamma)
    used = {"name": type(optimizer).__name__.lower(), "groups": starting_lrs,
            "weight_decay": s.weight_decay, "momentum": s.momentum if s.optimizer == "sgd" else None,
            "scheduler": s.scheduler, "warmup_steps": warmup_steps, "total_steps": total,
            "milestone_steps": sorted(int(round(float(m) * total)) for m in s.milestones)
            if s.scheduler == "multistep" else [], "gamma": s.gamma if s.scheduler == "multistep" else None,
            "label_smoothing": s.label_smoothing}
    scaler = torch.amp.GradScaler(device.type, enabled=(s.amp == "fp16"))
    history, start = [], 0
    state = ckpt.load(checkpoint_path, identity) if checkpoint_path else None
    if state is not None:
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        history, start = state["history"], state["epoch"]
        if extra_state is not None and state.get("extra") is not None:
            extra_state[1](state["extra"])
    params = adapted.trainable()
    for epoch in range(start, s.epochs):
        if timer:  # before the epoch hook: label re-mapping is part of training time
            timer.start_epoch()
        if hasattr(adapted, "on_epoch_start"):
            adapted.on_epoch_start(epoch, train_set)
            if timer:
                timer.mark()
        adapted.train()  # after the hook, which may evaluate the model to re-map labels
        running, seen = 0.0, 0
        # A generator per epoch: shuffling depends on (seed, epoch) only, so a resumed run sees the
        # same batches as an uninterrupted one.
        batches = loader(train_set, s.batch_size, True, seed * 100_003 + epoch, s.num_workers)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{s.epochs}", leave=False, disable=not s.progress,
                   file=sys.stderr)
        for x, y in bar:
            if timer:
                timer.data_ready()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with amp_context(device, s.amp):
                loss = F.cross_entropy(adapted.logits(x), y, label_smoothing=s.label_smoothing)
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"training loss is {loss.item()} at epoch {epoch + 1}; "
                                    "lower trainer.lr or enable trainer.grad_clip")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if s.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += loss.item() * y.numel()
            seen += y.numel()
            if timer:
                timer.step_done()
            bar.set_postfix(loss=f"{running / seen:.4f}")
        if timer:
            timer.end_epoch()
        history.append({"epoch": epoch + 1, "train_loss": running / max(1, seen)})
        if evaluate_epoch is not None:
            history[-1].update(evaluate_epoch())
            adapted.train()
        if checkpoint_path and epoch + 1 < s.epochs:
            ckpt.save(checkpoint_path, {
                "model": ckpt.trainable_state(model, adapted.bn_mode == "train_stats"),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng_state(), "history": history, "epoch": epoch + 1, "identity": identity,
                "extra": extra_state[0]() if extra_state is not None else None})
        if on_epoch:  # after the checkpoint: what was reported is also what a resumed run starts from
            on_epoch(history[-1])
    return {"history": history, "train_loss": history[-1]["train_loss"] if history else None,
            "resumed_from": start, "optimizer": used}
