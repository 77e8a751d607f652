"""Is a parsed record fit for a table? The values tables, plots and statistics read, checked on load.

A record whose value has the wrong type, is out of range (an accuracy below 0 or above 100 %, a negative
count), NaN, infinite or implausibly huge, or whose predictions cannot be decoded, would otherwise be
dropped from a mean while still widening its interval, or show as ``0.00 ± 26.77``, or end in a
traceback. :func:`problems` names each such value; ``store.iter_records`` lists the record with the
reason, beside the unreadable files, and no table sees it.
"""
from __future__ import annotations

import math
import re

from .predictions import decode

MAX_NAME = 300            # characters: a dataset, model, method, head, layer, stage or protocol name
MAX_COUNT = 10 ** 15      # parameters, images, steps: beyond any model or data set
MAX_MEASURE = 1e18        # seconds, bytes, FLOPs, images/s, lr

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # newlines, tabs, ANSI escapes: no name has them
NAMES = ("dataset", "dataset_group", "protocol", "stage", "model", "model_config", "method", "head")
SECTIONS = ("metrics", "params", "efficiency", "hparams", "data", "error", "predictions", "optimizer", "config")
PERCENT = ("metrics.val_top1", "metrics.test_top1")
LOSSES = ("metrics.train_loss", "metrics.val_loss")
COUNTS = ("params.total", "params.trainable", "params.trainable_no_head", "params.inserted", "params.effective",
          "hparams.epochs", "hparams.batch_size")  # (data.* is free-form: 'all (10000)')
MEASURES = ("wall_time_s", "efficiency.epoch_time_s", "efficiency.train_time_s", "efficiency.step_time_s",
            "efficiency.data_time_s", "efficiency.memory_bytes", "efficiency.saved_activation_bytes",
            "efficiency.cuda_peak_bytes", "efficiency.train_throughput", "efficiency.infer_throughput",
            "efficiency.flops_infer", "efficiency.flops_train", "efficiency.prefix_cache_build_s")
SETTINGS = ("hparams.lr", "hparams.head_lr", "hparams.weight_decay")  # what was asked for: any finite value >= 0


def _get(record: dict, dotted: str):
    value = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _number(value, dotted: str, low: float, high: float, integer: bool = False) -> str | None:
    if value is None:
        return None
    if type(value) not in ((int,) if integer else (int, float)):  # bool is no number here
        return f"{dotted} is {type(value).__name__} {_short(value)}, not {'an integer' if integer else 'a number'}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{dotted} is {value}"
    if not low <= value <= high:
        return f"{dotted} = {_short(value)} is outside [{low:g}, {high:g}]"
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _name(value, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{key} is {type(value).__name__} {_short(value)}, not a string"
    if len(value) > MAX_NAME:
        return f"{key} is {len(value)} characters long (at most {MAX_NAME})"
    if _CONTROL.search(value):  # it would break a table row, a plot label or a terminal
        return f"{key} {_short(value)} contains control characters"
    return None


def problems(record: dict) -> list[str]:
    """What makes ``record`` unfit for a table; empty when it is fit."""
    found = [_name(record.get("run_id"), "run_id") or (None if record.get("run_id") else "run_id is empty")]
    found += [_name(record.get(k), k) for k in NAMES]
    found += [f"{k} is {type(record[k]).__name__}, not an object" for k in SECTIONS
              if record.get(k) is not None and not isinstance(record[k], dict)]
    layers = record.get("layers")
    if layers is not None and not isinstance(layers, list):
        found.append(f"layers is {type(layers).__name__} {_short(layers)}, not a list")
    elif layers:
        found += [_name(str(p) if type(p) is int else p, "layers[]") for p in layers]
    found.append(_number(record.get("seed"), "seed", 0, 2 ** 63, integer=True))
    found += [_number(_get(record, k), k, 0, 100) for k in PERCENT]
    found += [_number(_get(record, k), k, 0, MAX_MEASURE) for k in (*LOSSES, *MEASURES)]
    found += [_number(_get(record, k), k, 0, math.inf) for k in SETTINGS]  # a failed run's lr=1e30 is what it was
    found += [_number(_get(record, k), k, 0, MAX_COUNT, integer=True) for k in COUNTS]
    if isinstance(record.get("predictions"), dict):
        try:
            decode(record["predictions"])
        except Exception as e:  # noqa: BLE001  (zlib, base64, numpy and key errors all mean: undecodable)
            found.append(f"predictions cannot be decoded ({type(e).__name__}: {_short(str(e))})")
    return [p for p in found if p]
