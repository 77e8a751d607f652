"""What each cell was trained with, as its records say: the recipe table of ``apbench results``.

One row per method label (of a model, protocol and dataset), from its final runs: the optimizer with
the lr each parameter group actually got (after lr scales and the batch-size rule), the schedule in
steps of the final run, the epochs of the reference schedule and the epochs used, the search space the
selection drew from (its size and rule), the point it chose and the edges left unresolved. A reader checks
here that every method ran its own recipe; the YAMLs say what was asked, these records what was done.
"""
from __future__ import annotations

import math

import pandas as pd

from .cells import edge_flags_of

COLUMNS = ["optimizer (lr per group)", "schedule (steps of a final run)", "epochs reference -> used",
           "search space", "chosen on val"]


def _number(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def recipe_of(record: dict, selection: dict | None = None) -> dict[str, str]:
    """The recipe columns of one record, as text ('-' for what it does not say); ``selection``: the one
    of ``cells.selections(record)`` whose cell this row is (a final run several searches reached is in
    each of their cells), None for a run no selection reached."""
    opt, hp = record.get("optimizer") or {}, record.get("hparams") or {}
    groups = ", ".join(f"{g} {_number(lr)}" for g, lr in sorted((opt.get("groups") or {}).items()))
    name = str(opt.get("name", "-")) + (f" m {_number(opt['momentum'])}" if opt.get("momentum") else "")
    optimizer = f"{name} ({groups})" if groups else name
    if opt.get("scheduler"):
        parts = [f"{opt.get('warmup_steps', 0)} warm-up"]
        if opt.get("milestone_steps"):
            parts.append("milestones " + "/".join(map(str, opt["milestone_steps"])))
        schedule = f"{opt['scheduler']} ({', '.join(parts)} of {opt.get('total_steps', '?')})"
    else:
        schedule = "-"
    ref, used = hp.get("epochs_reference"), hp.get("epochs_used", hp.get("epochs"))
    epochs = f"{ref if ref is not None else '-'} -> {used if used is not None else '-'}"
    sel = selection or {}
    space = sel.get("space") or {}
    if space:
        sizes = {k: len(v) if isinstance(v, list) else 1 for k, v in space.items()}
        searched = f"{math.prod(sizes.values())} points ({', '.join(f'{k} {n}' for k, n in sizes.items())})"
        searched += f", {sel['rule']}" if sel.get("rule") else ""
    else:
        searched = "-"
    chosen = ", ".join(f"{k}={_number(v) if not isinstance(v, list) else ','.join(map(str, v))}"
                       for k, v in (sel.get("chosen") or {}).items()) or "-"
    edges = edge_flags_of(record, selection)
    if edges and chosen != "-":
        chosen += f" (edge unresolved: {', '.join(edges)})"
    return dict(zip(COLUMNS, (optimizer, schedule, epochs, searched, chosen)))


def recipe_tables(df: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """{(model, protocol, dataset): table}, one row per label, from the ``recipe.*`` columns the
    records frame carries (the first final ok run of each cell: its seeds share the recipe)."""
    from .rows import final_ok, label_order

    ok = final_ok(df)
    cols = [f"recipe.{c}" for c in COLUMNS]
    if ok.empty or not set(cols) <= set(ok.columns):
        return {}
    tables = {}
    for (model, protocol, dataset), part in ok.groupby(["model", "protocol", "dataset"], dropna=False):
        table = part.groupby("label")[cols].first()
        table.columns = COLUMNS
        tables[(str(model), str(protocol), str(dataset))] = (table.reindex(label_order(table.index))
                                                             .rename_axis("method").fillna("-"))
    return tables
