"""The paper-style table of a multi-task study: one row per method label, the tasks as columns (by
group), then each group's mean, the mean of the group means, the mean over tasks, and the trainable
parameters. Cells are the mean final-epoch test top-1 over seeds (``†``: a choice on the edge of its
space); intervals and seeds are in the accuracy and stats tables beside it."""
from __future__ import annotations

import pandas as pd

from .groups import MISSING_CELL, dataset_order, group_summary, table_groups
from .rows import ACC, final_ok, label_order

EDGE = "\N{DAGGER}"
PARAMS = "trainable params (mean over tasks)"


def _edge(flags: pd.Series) -> bool:
    return any(isinstance(f, (list, tuple)) and len(f) > 0 for f in flags)


def paper_tables(df: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """{(model, protocol): table} for every (model, protocol) with results on two datasets or more."""
    ok = final_ok(df)
    if ok.empty:
        return {}
    ok = ok.assign(**{c: ok[c] if c in ok else None for c in ("hparams.edge_flags", "params.trainable")})
    keys = ["model", "protocol", "dataset", "label"]
    cells = ok.groupby(keys, dropna=False).agg(
        group=("dataset_group", "first"), mean=(ACC, "mean"), edge=("hparams.edge_flags", _edge),
        params=("params.trainable", "mean")).reset_index()
    tables = {}
    for (model, protocol), part in cells.groupby(["model", "protocol"], dropna=False):
        groups = part.groupby("dataset")["group"].first()
        if len(groups) < 2:
            continue
        order = table_groups(groups)
        datasets, labels = dataset_order(groups, order), label_order(part["label"])
        means = part.pivot(index="dataset", columns="label", values="mean").reindex(index=datasets, columns=labels)
        edges = part.pivot(index="dataset", columns="label", values="edge").reindex_like(means)
        shown = means.map(lambda v: MISSING_CELL if pd.isna(v) else f"{v:.2f}")
        shown = shown.where(edges.fillna(False) == False, shown + EDGE)  # noqa: E712 (element-wise)
        table = pd.concat([shown, group_summary(means, groups, order)]).T
        params = part.groupby("label")["params"].mean().reindex(labels)
        table[PARAMS] = [MISSING_CELL if pd.isna(p) else f"{p:.0f}" for p in params]
        table.index.name = "method"
        tables[(str(model), str(protocol))] = table
    return tables
