"""The work of one run, once its config is valid: fills ``record`` in place."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import data, methods
from .engine.efficiency import StepTimer, count_params, measure_all
from .engine.loop import evaluate, fit
from .engine.seeding import seed_everything
from .env import environment, resolve_device
from .models.factory import build_model
from .models.weights import WeightsError
from .validate import METHOD_RESERVED, InputError


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
        record["weights"] = built.weights
        model, pre = built.model, built.preprocessing

        splits = data.build(OmegaConf.to_container(cfg.dataset, resolve=True), pre, cfg.paths.data_root)
    except (WeightsError, data.DataError) as e:
        raise InputError(str(e)) from e
    record["data"] = dict(splits.info)

    m = OmegaConf.to_container(cfg.method, resolve=True)
    # The head axis: a new classifier, or the frozen source one (optionally behind a label map).
    head = methods.setup_head(model, m.get("head", "linear"), splits.num_classes, seed=cfg.seed)
    args = {k: v for k, v in m.items() if k not in METHOD_RESERVED}
    adapted = methods.apply(model, m["name"], input_size=pre["input_size"], head_prefixes=head.prefixes, **args)
    head.attach(adapted)
    record["bn_mode"] = adapted.bn_mode
    record["method_info"] = adapted.info
    record["params"] = count_params(model, head.prefixes, adapted.inserted)

    if on_ready:
        on_ready()
    timer = StepTimer(device)
    out = fit(adapted, splits.train, device, settings, cfg.seed, checkpoint_path=run_dir / "checkpoint.pt",
              timer=timer, on_epoch=on_epoch)
    record["history"] = out["history"]
    record["label_map"] = adapted.info.get("label_map")  # label_map[target] = source class; frozen from here on
    record["label_map_history"] = adapted.info.get("label_map_history")
    record["resumed_from_epoch"] = out["resumed_from"]
    metrics = record["metrics"] = {"train_loss": out["train_loss"]}  # filled in place: a later failure keeps it
    metrics["val_top1"] = evaluate(adapted, splits.val, device, settings.eval_batch_size, settings.amp, "val")
    if cfg.protocol.stage == "final":  # only final runs ever open the test split
        metrics["test_top1"] = evaluate(adapted, splits.test(), device, settings.eval_batch_size, settings.amp, "test")
    else:
        metrics["test_top1"] = None
    precision = settings.amp if settings.amp != "none" else "fp32"
    if cfg.trainer.get("measure_efficiency", True):
        # Same synthetic batch for every method: params, saved memory, throughput, FLOPs.
        measured = measure_all(model, head.prefixes, adapted.inserted, pre["input_size"][1:], device,
                               settings.optimizer, settings.batch_size, precision, timer=timer,
                               warmup=int(cfg.trainer.get("throughput_warmup", 3)),
                               iters=int(cfg.trainer.get("throughput_iters", 10)))
        record["params"], record["efficiency"] = measured["params"], measured["efficiency"]
    else:
        record["efficiency"] = timer.as_dict() | {"batch_size": settings.batch_size,
                                                  "image_size": pre["input_size"][-1], "precision": precision}
