"""Run records -> one flat pandas row per run.

Tables and plots work on this frame only, so the schema knowledge (which nested sections exist,
defaults for old records, how a method is labelled) lives in one place.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from .store import iter_records

# Nested sections flattened to "section.key" columns; config/env/preprocessing stay out of the frame
# (wide, free-form and not needed by any table).
SECTIONS = ("metrics", "params", "efficiency", "hparams")
TOP_KEYS = ("run_id", "status", "dataset", "dataset_group", "protocol", "stage", "model", "method",
            "head", "layers", "seed", "started_at", "finished_at", "wall_time_s", "_path")
NUMERIC = ("wall_time_s", "metrics.val_top1", "metrics.test_top1", "metrics.train_loss",
           "params.total", "params.trainable", "params.trainable_no_head",
           "efficiency.epoch_time_s", "efficiency.train_time_s", "efficiency.memory_bytes", "efficiency.train_throughput",
           "efficiency.infer_throughput", "efficiency.flops_infer")
# Present even when no record carries them, so the table code never checks for columns.
REQUIRED = (*TOP_KEYS, *NUMERIC, "hparams.edge_flags", "error_type", "error_message", "variant")
# The method option that makes two runs of one method different methods in a table (AP's full vs
# per-channel prompt, VP's pad vs expansive frame, ...): dotted paths into the record's config.method.
VARIANT_KEYS = {"ap": "shape", "vp": "variant", "vpt": "variant", "adapter": "variant",
                "peft": "config.peft_type"}


def _row(record: dict) -> dict:
    row = {k: record.get(k) for k in TOP_KEYS}
    row.update({s: record.get(s) or {} for s in SECTIONS})  # json_normalize flattens these
    error = record.get("error") or {}
    row["error_type"], row["error_message"] = error.get("type"), error.get("message")
    row["variant"] = _variant(record)
    return row


def _variant(record: dict) -> str:
    return variant_of(str(record.get("method")), (record.get("config") or {}).get("method"))


def variant_of(method: str, method_cfg: dict | None) -> str:
    """The value of ``method``'s ``VARIANT_KEYS`` entry in its config section, lower-case ('' if none)."""
    value = method_cfg or {}
    for part in VARIANT_KEYS.get(method, "").split("."):
        value = value.get(part) if isinstance(value, dict) and part else None
    return "" if value is None or isinstance(value, (dict, list)) else str(value).lower()


def _layers(value) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return () if value is None or value != value else (str(value),)  # NaN-safe


def layer_sort_key(layers: str) -> tuple:
    """Order layer labels as a network reads: input, then 0..N, then negatives, then module paths."""
    def part(p: str) -> tuple:
        if p == "input":
            return (0, 0, "")
        if re.fullmatch(r"-?\d+", p):
            n = int(p)
            return (1, n, "") if n >= 0 else (2, n, "")
        return (3, 0, p)
    return tuple(part(p) for p in layers.split("+")) if layers else ()


def method_labels(df: pd.DataFrame, layers: bool = True) -> pd.Series:
    """``method[:variant][@layers][[head]]``: the variant (``VARIANT_KEYS``) and the layers only when
    they vary for that model and method, the head only when it is not the default linear one, so two
    variants or two head types never share a column. ``layers=False``: the series a layer sweep plots."""
    by = df.groupby(["model", "method"], dropna=False)
    varied = by["variant"].transform("nunique") > 1
    kind = np.where(varied & (df["variant"] != ""), ":" + df["variant"], "")
    swept = by["layers_str"].transform("nunique") > 1
    at = np.where(layers & swept & (df["layers_str"] != ""), "@" + df["layers_str"], "")
    head = np.where(df["head"] != "linear", "[" + df["head"] + "]", "")
    return (df["method"].astype(str) + kind + at + head).astype(str)


def records_frame(records: list[dict]) -> pd.DataFrame:
    df = pd.json_normalize([_row(r) for r in records], sep=".")
    df = df.reindex(columns=list(dict.fromkeys([*df.columns, *REQUIRED])))
    df["head"] = df["head"].fillna("linear").astype(str)
    df["variant"] = df["variant"].fillna("").astype(str)
    df["method"] = df["method"].astype(str)
    df["layers"] = df["layers"].map(_layers)
    df["layers_str"] = df["layers"].map("+".join).astype(str)
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    # The same run_id seen twice (e.g. a results folder copied into another) would count a seed
    # twice and shrink the std; keep the last finished copy.
    df = (df.sort_values("finished_at", na_position="first", kind="stable")
            .drop_duplicates("run_id", keep="last")
            .reset_index(drop=True))
    df["label"] = method_labels(df) if len(df) else pd.Series(dtype=str)
    return df


def load_records(root: str | os.PathLike) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Every record under ``root`` as one row each, and the unreadable files as (path, reason)."""
    bad: list[tuple[str, str]] = []
    records = list(iter_records(root, bad=bad))
    return records_frame(records), bad
