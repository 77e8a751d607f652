"""Run records -> one flat pandas row per run.

Tables and plots work on this frame only, so the schema knowledge (which nested sections exist,
defaults for old records, how a method is labelled) lives in one place.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .cells import cell_id, cell_key, differences, edge_flags_of, flatten, is_dataset_key, searched_keys, selections
from .convergence import convergence
from .recipe_table import recipe_of
from .store import iter_records

# Nested sections flattened to "section.key" columns; config/env/preprocessing stay out of the frame
# (wide, free-form and not needed by any table).
SECTIONS = ("metrics", "params", "efficiency", "hparams")
TOP_KEYS = ("run_id", "status", "dataset", "dataset_group", "protocol", "stage", "model", "method",
            "head", "layers", "seed", "started_at", "finished_at", "wall_time_s", "_path")
NUMERIC = ("wall_time_s", "metrics.val_top1", "metrics.test_top1", "metrics.train_loss",
           "params.total", "params.trainable", "params.trainable_no_head",
           "efficiency.epoch_time_s", "efficiency.train_time_s", "efficiency.memory_bytes", "efficiency.train_throughput",
           "efficiency.infer_throughput", "efficiency.flops_infer", "efficiency.step_time_s", "n_test")
# Present even when no record carries them, so the table code never checks for columns.
REQUIRED = (*TOP_KEYS, *NUMERIC, "hparams.edge_flags", "error_type", "error_message", "variant", "predictions",
            "cell", "reached_by", "selection")
# The method option that makes two runs of one method different methods in a table (AP's full vs
# per-channel prompt, VP's pad vs expansive frame, ...): dotted paths into the record's config.method.
VARIANT_KEYS = {"ap": "shape", "vp": "variant", "vpt": "variant", "adapter": "variant",
                "peft": "config.peft_type"}


def _rows(record: dict) -> list[dict]:
    """One row per cell the run belongs to: a final run several selections reached is in each."""
    row = {k: record.get(k) for k in TOP_KEYS}
    row["model"] = model_label(record)
    row.update({s: record.get(s) or {} for s in SECTIONS})  # json_normalize flattens these
    error = record.get("error") or {}
    row["error_type"], row["error_message"] = error.get("type"), error.get("message")
    row["variant"] = _variant(record)
    row["optimizer_groups"] = ",".join(sorted((record.get("optimizer") or {}).get("groups") or {})) or None
    row["n_test"] = (record.get("data") or {}).get("test")
    # a select run's convergence, for the methods table's row of the cell that chose it
    row["converged"] = convergence(record.get("history") or [])["converged"]
    row["predictions"] = record.get("predictions")  # kept encoded; results.stats decodes it
    sels = selections(record) if record.get("stage") == "final" else []
    # a layer its selection chose (AP's in a methods table) is a choice, like an lr: not in the label
    row["layers_chosen"] = any("method.layers" in searched_keys(sel) for sel in sels)
    rows = []
    for sel in sels or [None]:
        key = cell_key(record, sel)
        hparams = (row.get("hparams") or {}) | ({"edge_flags": edge_flags_of(record, sel)} if sel else {})
        rows.append(row | {"hparams": hparams, "cell": cell_id(key), "_cell_key": key, "reached_by": max(1, len(sels)),
                           "selection": sel,  # this row's own selection, whole (results.budget reads it)
                           "recipe": recipe_of(record, sel)})  # flattened to recipe.<column> by json_normalize
    return rows


def model_label(record: dict) -> str | None:
    """The timm architecture the run built, or its model config's name when the config's ``kwargs``
    reshape that architecture: a resnet18 at 1/4 width is not what a reader takes ``resnet18`` to be."""
    model_cfg = (record.get("config") or {}).get("model") or {}
    if model_cfg.get("kwargs") and record.get("model_config"):
        return str(record["model_config"])
    return record.get("model")


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


def method_labels(df: pd.DataFrame, layers: bool = True) -> pd.Series:
    """``method[:variant][@layers][[head]]``: the variant (``VARIANT_KEYS``) and the layers only when
    they vary for that model and method and no selection chose them (AP with its layer chosen on val is
    one column, ``ap``, whatever depth each dataset chose), the head only when it is not the default linear one, so two
    variants or two head types never share a column. ``layers=False``: the series a layer sweep plots."""
    by = df.groupby(["model", "method"], dropna=False)
    varied = by["variant"].transform("nunique") > 1
    kind = np.where(varied & (df["variant"] != ""), ":" + df["variant"], "")
    swept = by["layers_str"].transform("nunique") > 1
    chosen = df["layers_chosen"].fillna(False).astype(bool) if "layers_chosen" in df else False
    at = np.where(layers & swept & ~chosen & (df["layers_str"] != ""), "@" + df["layers_str"], "")
    head = np.where(df["head"] != "linear", "[" + df["head"] + "]", "")
    return (df["method"].astype(str) + kind + at + head).astype(str)


def _split_key(key: dict, dataset: bool) -> dict:
    """The dataset leaves of a cell key (``dataset=True``) or all the others."""
    return {p: v for p, v in flatten(key).items() if is_dataset_key(p) == dataset}


def _disambiguate(df: pd.DataFrame, by: list[str], dataset: bool) -> pd.Series:
    """Per group of ``by`` (final runs only), ``{k=v}`` over what the group's cells differ in."""
    suffix = pd.Series("", index=df.index, dtype=object)
    final = df[df["stage"] == "final"]
    for _, part in final.groupby(by, dropna=False):
        cells = part.drop_duplicates("cell")
        diffs = differences([_split_key(k, dataset) for k in cells["_cell_key"]])
        by_cell = dict(zip(cells["cell"], diffs))
        suffix[part.index] = [(" " + by_cell[c]) if by_cell[c] else "" for c in part["cell"]]
    return suffix


def records_frame(records: list[dict]) -> pd.DataFrame:
    rows = [row for r in records for row in _rows(r)]
    # nested dicts kept whole, out of json_normalize's flattening
    whole = {c: [row.pop(c) for row in rows] for c in ("_cell_key", "predictions", "selection")}
    df = pd.json_normalize(rows, sep=".")
    for c, values in whole.items():
        df[c] = pd.Series(values, dtype=object)
    df = df.reindex(columns=list(dict.fromkeys([*df.columns, *REQUIRED])))
    df["head"] = df["head"].fillna("linear").astype(str)
    df["variant"] = df["variant"].fillna("").astype(str)
    df["method"] = df["method"].astype(str)
    df["layers"] = df["layers"].map(_layers)
    df["layers_str"] = df["layers"].map("+".join).astype(str)
    for col in NUMERIC:  # an infinity (a hand-written record, a failed measure) is no measurement: missing
        df[col] = pd.to_numeric(df[col], errors="coerce").replace([np.inf, -np.inf], np.nan)
    # The same run_id seen twice (e.g. a results folder copied into another) would count a seed
    # twice and shrink the std; keep the last finished copy (per cell it is in).
    df = (df.sort_values("finished_at", na_position="first", kind="stable")
            .drop_duplicates(["run_id", "cell"], keep="last")
            .reset_index(drop=True))
    if not len(df):
        return df.assign(label=pd.Series(dtype=str), dataset_label=pd.Series(dtype=str))
    # Labels: method[:variant][@layers][head], then {k=v} for whatever else tells apart cells that
    # would share it (over all datasets of a table, so a column means one thing); datasets likewise.
    df["label"] = method_labels(df)
    df["label"] = df["label"] + _disambiguate(df, ["model", "protocol", "label"], dataset=False)
    df["dataset_label"] = df["dataset"].astype(str) + _disambiguate(df, ["model", "protocol", "dataset"], dataset=True)
    return df


def load_records(root: str | os.PathLike) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Every record under ``root`` as one row each, and the unreadable files as (path, reason)."""
    bad: list[tuple[str, str]] = []
    records = list(iter_records(root, bad=bad))
    return records_frame(records), bad
