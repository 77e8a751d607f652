"""The work of one run, once its config is valid: fills ``record`` in place."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import data, identity, methods
from .engine import prefix_cache, speed_options
from .engine.efficiency import StepTimer, count_params, measure_all
from .engine.params import effective_params
from .engine.loop import evaluate, evaluate_with_loss, fit
from .engine.seeding import seed_everything
from .engine.trained_prompt import save_prompt
from .env import environment, resolve_device
from .models.factory import build_model
from .models.weights import WeightsError
from .results.predictions import encode as encode_predictions
from .errors import InputError
from .validate import METHOD_RESERVED


def adapt(model, method: dict, input_size, num_classes: int, seed: int):
    """Put the cell's head and method on ``model`` (the config's ``method`` section, resolved):
    ``(adapted, head)``. Shared by the runner and by ``plan`` / ``measure``, which cost cells."""
    # The head axis: a new classifier, or the frozen source one (optionally behind a label map).
    head = methods.setup_head(model, method.get("head", "linear"), num_classes, seed=seed)
    args = {k: v for k, v in method.items() if k not in METHOD_RESERVED}
    adapted = methods.apply(model, method["name"], input_size=input_size, head_prefixes=head.prefixes, **args)
    head.attach(adapted)
    return adapted, head


def head_state(head, adapted):
    """``(get, set)`` of a label-mapping head's map for the checkpoint: a resumed FLM run keeps the map
    computed before training instead of recomputing it from the resumed model; ILM keeps its history."""
    if head.kind not in ("flm", "ilm"):
        return None

    def get() -> dict:
        return {"label_map_history": [list(m) for m in head.history]}

    def put(state: dict) -> None:
        head.history = [list(m) for m in state["label_map_history"]]
        if head.history:
            head.mapping = torch.tensor(head.history[-1], dtype=torch.long)
            adapted.info["label_map"] = list(head.history[-1])
            adapted.info["label_map_history"] = [list(m) for m in head.history]
    return get, put


def execute(cfg: DictConfig, facts: dict, run_dir: Path, record: dict, on_epoch=None, on_ready=None) -> None:
    """``on_ready()`` is called once weights and data are loaded, just before training starts."""
    device = resolve_device(cfg.device)
    record["env"] = environment(device)
    seed_everything(cfg.seed)
    settings = facts["settings"]
    settings.progress = bool(cfg.trainer.get("progress", True))

    # Missing or malformed weights/data found here are the user's input, not a failed run: nothing has
    # trained yet, so they surface as InputError (exit 2, no record) instead of a 'failed' record.
    try:
        built = build_model(OmegaConf.to_container(cfg.model, resolve=True), device)
        model, pre = built.model, built.preprocessing

        splits = data.build(OmegaConf.to_container(cfg.dataset, resolve=True), pre, cfg.paths.data_root)
        # Only final runs ever open the test split; opened before training so a prefix cache can cover it.
        test_set = splits.test() if cfg.protocol.stage == "final" else None
    except (WeightsError, data.DataError) as e:
        raise InputError(str(e)) from e
    record["data"] = dict(splits.info)
    record["num_classes"], record["class_names"] = splits.num_classes, [str(c) for c in splits.class_names] or None
    # Before training: the checkpoint carries it, and the next launch compares it to decide skip or rerun.
    ident = record["identity"] = identity.make(record["run_id"], record.get("weights") or {},
                                               identity.data_digests(splits.train, splits.val, test_set))

    adapted, head = adapt(model, OmegaConf.to_container(cfg.method, resolve=True), pre["input_size"],
                          splits.num_classes, seed=cfg.seed)
    record["bn_mode"] = adapted.bn_mode
    record["method_info"] = adapted.info
    record["params"] = count_params(model, head.prefixes, adapted.inserted)

    cache = prefix_cache.prepare(
        adapted, {"train": splits.train, "val": splits.val, "test": test_set},
        deterministic=bool(splits.info.get("deterministic_train")), mode=cfg.trainer.get("prefix_cache", "auto"),
        max_gb=float(cfg.trainer.get("prefix_cache_max_gb", 4.0)), input_size=pre["input_size"],
        batch_size=settings.eval_batch_size, amp=settings.amp, device=device,
        store_dir=cfg.trainer.get("prefix_cache_dir"))
    record["prefix_cache"] = cache.info
    if on_ready:  # data, weights and the prefix cache are in place: the run is underway
        on_ready()
    timer = StepTimer(device)
    with cache.active(adapted), speed_options.applied(
            adapted, cache.sets["train"], channels_last=bool(cfg.trainer.get("channels_last", False)),
            compile=bool(cfg.trainer.get("compile", False)), amp=settings.amp) as speed:
        record["speed_options"] = speed
        # Trained on train+val (a protocol's final runs): val is no held-out measure, so none is reported.
        val_in_train = bool(cfg.dataset.get("trainval", False))

        def score_val():
            v = evaluate_with_loss(adapted, cache.sets["val"], device, settings.eval_batch_size, settings.amp, "val")
            return {"val_top1": v["top1"], "val_loss": v["loss"]}
        # Select runs score val after every epoch: the learning curve and convergence check of the chosen point.
        per_epoch = score_val if cfg.protocol.stage == "select" and not val_in_train else None
        out = fit(adapted, cache.sets["train"], device, settings, cfg.seed,
                  checkpoint_path=run_dir / "checkpoint.pt", timer=timer, on_epoch=on_epoch,
                  identity=ident["digest"], extra_state=head_state(head, adapted), evaluate_epoch=per_epoch)
        record["optimizer"] = out["optimizer"]  # what the optimizer and schedule actually were
        metrics = record["metrics"] = {"train_loss": out["train_loss"]}  # filled in place: a failure keeps it
        if val_in_train:
            metrics["val_top1"] = metrics["val_loss"] = None
        elif per_epoch is not None and "val_top1" in (out["history"] or [{}])[-1]:  # the final epoch's, computed
            metrics["val_top1"], metrics["val_loss"] = out["history"][-1]["val_top1"], out["history"][-1]["val_loss"]
        else:
            metrics.update(score_val())
        test_preds: list = []
        metrics["test_top1"] = (evaluate(adapted, cache.sets["test"], device, settings.eval_batch_size, settings.amp,
                                         "test", predictions=test_preds) if test_set is not None else None)
        if test_preds:  # per test image, for paired statistics (results.stats)
            record["predictions"] = encode_predictions(torch.cat([p for p, _ in test_preds]),
                                                       torch.cat([y for _, y in test_preds]))
    record["history"] = out["history"]
    save_prompt(adapted, run_dir)  # AP's trained prompt, for `apbench analyze analysis.prompt_run=`
    record["label_map"] = adapted.info.get("label_map")  # label_map[target] = source class; frozen from here on
    record["label_map_history"] = adapted.info.get("label_map_history")
    record["resumed_from_epoch"] = out["resumed_from"]
    precision = settings.amp if settings.amp != "none" else "fp32"
    if cfg.trainer.get("measure_efficiency", True):
        # Same synthetic batch for every method: params, saved memory, throughput, FLOPs.
        adapted.eval()  # dropout off, BN frozen: the gradient structure, not its noise
        # Effective = nominal minus prompt entries that never reach the loss (issue 8); other groups
        # (heads, factors, norms) count in full: random-input deadness there says nothing structural.
        prompts = adapted.param_groups.get("prompt", [])
        effective = (record["params"]["trainable"] - sum(p.numel() for p in prompts)
                     + effective_params(adapted.logits, prompts, pre["input_size"], device))
        measured = measure_all(model, head.prefixes, adapted.inserted, pre["input_size"][1:], device,
                               settings.optimizer, settings.batch_size, precision, timer=timer,
                               warmup=int(cfg.trainer.get("throughput_warmup", 3)),
                               iters=int(cfg.trainer.get("throughput_iters", 10)), effective=effective)
        record["params"], record["efficiency"] = measured["params"], measured["efficiency"]
    else:
        record["efficiency"] = timer.as_dict() | {"batch_size": settings.batch_size,
                                                  "image_size": pre["input_size"][-1], "precision": precision}
    # Building the training cache is part of what training costs.
    build = cache.info.get("build_time_by_split_s", {}).get("train", 0.0)
    if record["efficiency"].get("train_time_s") is not None:
        record["efficiency"]["train_time_s"] += build
    record["efficiency"]["prefix_cache_build_s"] = build
