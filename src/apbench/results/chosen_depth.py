"""Where a selection put a method's layer (AP with its layer chosen on val): one row per dataset, by
group, one column per label whose final runs' layer was chosen, and per group the points chosen there
in dataset order -- the methods table's answer to "which depth", read by val, never by test."""
from __future__ import annotations

import pandas as pd

from .groups import MISSING_CELL, dataset_order, table_groups
from .rows import final_ok, layer_sort_key


def depth_tables(df: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """{(model, protocol): table}; empty where no final run's layer was chosen by its selection."""
    ok = final_ok(df)
    if ok.empty or "layers_chosen" not in ok:
        return {}
    ok = ok[ok["layers_chosen"].fillna(False).astype(bool)]
    tables = {}
    for (model, protocol), part in ok.groupby(["model", "protocol"], dropna=False):
        groups = part.groupby("dataset")["dataset_group"].first()
        rows = dataset_order(groups, table_groups(groups))
        chosen = part.groupby(["dataset", "label"])["layers_str"].agg(
            lambda v: "/".join(sorted(set(v), key=layer_sort_key))).unstack().reindex(rows)
        table = chosen.fillna(MISSING_CELL)
        table.insert(0, "group", [str(groups[d]) if pd.notna(groups[d]) else MISSING_CELL for d in rows])
        summary = {f"group: {g}": {label: ", ".join(chosen.loc[groups.reindex(rows) == g, label].dropna())
                                   or MISSING_CELL for label in chosen.columns} | {"group": g}
                   for g in dict.fromkeys(table["group"]) if g != MISSING_CELL}
        table = pd.concat([table, pd.DataFrame(summary).T.reindex(columns=table.columns)])
        table.index.name, table.columns.name = "dataset", None
        tables[(str(model), str(protocol))] = table
    return tables
