"""Records -> the data the results browser page embeds (``results.browser`` writes the page).

Everything the page shows is computed here, in Python, by the functions the tables use, so the page
and the tables cannot disagree: the rows are the methods table's (``tables.method_tables``, whatever
columns it has) plus the cell's costs; the comparison of two cells is ``stats.pairwise_stats`` (the
numbers ``apbench results --reference`` prints); the suite pivot is ``tables.accuracy_tables``. Only the
Pareto front is left to the page, because it depends on the filters a reader picks.

Plain JSON only: NaN and infinities become null (the page shows an empty cell), numpy scalars Python
numbers.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd

from ..methods.catalog import method_kind
from .cells import cell_id, cell_key, chosen_point, selections
from .recipe_table import recipe_tables
from .rows import ACC, final_ok
from .stats import cell_stats, comparison_text, pairwise_stats
from .tables import accuracy_tables, method_tables

# Costs the plot offers: frame column -> (key, axis label, scale to the unit shown).
COSTS = {"params.trainable": ("params", "trainable parameters", 1.0),
         "efficiency.memory_bytes": ("memory", "training memory (MB)", 1e-6),
         "efficiency.step_time_s": ("step", "train step, full model (ms)", 1e3)}
# Columns the page adds to the methods table's, after it: (name, cost key, decimals).
ADDED = (("memory (MB)", "memory", 1), ("step time (ms)", "step", 1))
EDGE_COLUMN = "edge flags"
HISTORY_KEYS = ("epoch", "val_top1", "val_loss", "train_loss")
NOT_A_NUMBER = re.compile(r"\b[+-]?(nan|inf|infinity)\b", re.I)
LEADING_NUMBER = re.compile(r"^[\[(]?\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", re.I)
ROW_CAP = 200  # table rows the page draws before "show all": thousands of rows take seconds to lay out
SKIP_DIRS = ("runs", ".git")  # record folders: their files are reached through the cells' links


def plain(value):
    """JSON-safe: None for NaN/inf/pd.NA, Python numbers for numpy ones, lists for tuples/arrays."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def number(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def table_cell(value) -> list:
    """``[text, sort number or None]`` of one methods-table cell: a number's text as the table writes
    it; NaN/inf (also inside a text, e.g. ``nan ± nan``) empty; the sort number is the value, or the
    leading number of a text (``85.51 ± 0.43†`` -> 85.51, ``[84.77, 86.25]`` -> 84.77, ``23.5 min``)."""
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return ["", None]
    if isinstance(value, bool):
        return [str(value), None]
    if isinstance(value, (int, float)) or hasattr(value, "dtype"):
        v = number(value)
        if v is None:
            return ["", None]
        whole = isinstance(value, int) or "int" in str(getattr(value, "dtype", ""))
        return [str(int(v)) if whole else repr(v), v]  # 85.0 as the markdown table prints it
    text = str(value)
    if NOT_A_NUMBER.search(text):
        return ["", None]
    m = LEADING_NUMBER.match(text)
    return [text, number(m.group(1)) if m else None]


def _href(path, out: Path) -> str | None:
    """``path`` relative to the page's folder, with forward slashes (the page encodes each part)."""
    if not path or (isinstance(path, float) and math.isnan(path)):
        return None
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(out))).as_posix()


KEY = ["model", "protocol", "dataset", "label"]


def cell_summaries(df: pd.DataFrame) -> dict[tuple, dict]:
    """(model, protocol, dataset, label) as the tables' keys spell them (text) -> what the page needs of
    the cell's final runs: run ids by seed, cell id, method, dataset group, runs, mean test top-1, mean
    costs, edge flags. One grouped aggregation: thousands of per-cell frame slices take minutes."""
    ok = final_ok(df)
    narrow = ok[[*KEY, "cell", "run_id", "method", "dataset_group", "seed", "hparams.edge_flags", ACC, *COSTS]]
    narrow = narrow.sort_values("seed", kind="stable")
    edges = lambda flags: sorted({str(f) for fl in flags if isinstance(fl, (list, tuple)) for f in fl})  # noqa: E731
    agg = narrow.groupby(KEY, dropna=False, sort=False).agg(
        cell=("cell", "first"), run_ids=("run_id", list), method=("method", "first"),
        group=("dataset_group", "first"), n=("run_id", "size"), mean=(ACC, "mean"),
        edges=("hparams.edge_flags", edges), **{key: (col, "mean") for col, (key, _, _) in COSTS.items()})
    return {tuple(map(str, k)): v for k, v in agg.to_dict("index").items()}


def rows_and_columns(df: pd.DataFrame, cells: dict[tuple, dict]) -> tuple[list[str], list[dict]]:
    """(column names, one row per cell) of the methods table, over every (model, protocol, dataset)."""
    tables = method_tables(df)
    stats = cell_stats(df).astype({"model": str, "protocol": str, "dataset": str, "label": str})
    stats = dict(zip(zip(stats["model"], stats["protocol"], stats["dataset"], stats["label"]),
                     zip(stats["ci_lo"], stats["ci_hi"])))
    columns: list[str] = []
    for table in tables.values():
        columns += [c for c in table.columns if c not in columns]
    if "converged" in columns:
        columns.insert(columns.index("converged") + 1, EDGE_COLUMN)
    else:
        columns.append(EDGE_COLUMN)
    columns += [name for name, _, _ in ADDED]
    rows = []
    for (model, protocol, dataset), table in tables.items():
        for label, values in zip(table.index, table.to_dict("records")):
            key = (model, protocol, dataset, str(label))
            cell = cells.get(key)
            if cell is None:
                continue
            lo, hi = stats.get(key, (None, None))
            cost = {k: (None if (v := number(cell[k])) is None else v * scale) for _, (k, _, scale) in COSTS.items()}
            shown = {c: table_cell(v) for c, v in values.items()}
            shown[EDGE_COLUMN] = [", ".join(cell["edges"]), None]
            for name, k, decimals in ADDED:
                v = cost[k]
                shown[name] = ["", None] if v is None else [f"{v:.{decimals}f}", v]
            method = str(cell["method"])
            group = cell["group"]
            rows.append({
                "id": str(cell["cell"]), "model": model, "protocol": protocol, "dataset": dataset,
                "group": "" if group is None or group != group else str(group),
                "label": str(label), "method": method, "family": method_kind(method),
                "n": int(cell["n"]), "mean": number(cell["mean"]), "lo": number(lo), "hi": number(hi),
                "cost": cost, "cells": [shown.get(c, ["", None]) for c in columns],
            })
    return columns, rows


def _selection(record: dict, cell: str) -> dict | None:
    """The selection of ``record`` whose cell is ``cell`` (a final run several searches reached is in each)."""
    for sel in selections(record):
        if cell_id(cell_key(record, sel)) == cell:
            return sel
    return None


def _value_text(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(_value_text, v))
    return str(v)


def _point_text(point: dict) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in point.items() if k not in ("val_top1", "val_loss", "run_id"))


def _history(record: dict | None) -> list[dict]:
    return [{k: plain(h.get(k)) for k in HISTORY_KEYS if k in h} for h in (record or {}).get("history") or []
            if isinstance(h, dict)]


def _why(runs: list[dict], chosen: int | None) -> str:
    """Why the protocol took its point, in the order ``protocol.choose`` decides."""
    if chosen is None or not 0 <= chosen < len(runs):
        return "the records do not say which point was chosen"
    scored = [r for r in runs if r["val"] is not None]
    best = runs[chosen]["val"]
    tied = [r for r in scored if r["val"] == best]
    if len(tied) == 1:
        return f"highest val top-1 ({best:g}) of the {len(runs)} select runs"
    losses = [r["val_loss"] for r in tied if r["val_loss"] is not None]
    mine = runs[chosen]["val_loss"]
    if mine is not None and losses and mine == min(losses) and losses.count(mine) == 1:
        return f"{len(tied)} select runs tied at val top-1 {best:g}; the lowest val loss ({mine:.4g}) of them"
    return (f"{len(tied)} select runs tied at val top-1 {best:g} and val loss: the cheaper point "
            "(deeper first trained point, then fewer trainable parameters)")


def cell_detail(cell: dict, by_id: dict, out: Path, recipe: dict | None) -> dict:
    """What a click on a cell (``cell_summaries``' entry) shows: recipe, select runs with their points and
    val, the choice and why, learning curves, config and environment, links to the records."""
    finals = [by_id[r] for r in cell["run_ids"] if r in by_id]
    first = finals[0] if finals else {}
    sel = _selection(first, str(cell["cell"])) if first else None
    selection = None
    select_record = None
    if sel:
        scores = sel.get("val_top1") if isinstance(sel.get("val_top1"), list) else []
        runs = [{"point": _point_text(p), "val": number(p.get("val_top1")), "val_loss": number(p.get("val_loss")),
                 "run_id": p.get("run_id"), "href": _href((by_id.get(p.get("run_id")) or {}).get("_path"), out)}
                for p in scores if isinstance(p, dict)]
        index = sel.get("chosen_index")
        index = int(index) if isinstance(index, (int, float)) and index == index else None
        point = chosen_point(scores, index)
        select_record = by_id.get(point.get("run_id")) if point else None
        selection = {"rule": sel.get("rule"), "budget": sel.get("budget"), "space": plain(sel.get("space")),
                     "chosen": index, "why": _why(runs, index), "runs": runs,
                     "edge": plain((first.get("hparams") or {}).get("edge_flags") or [])}
    return plain({
        "recipe": recipe,
        "selection": selection,
        "finals": [{"seed": r.get("seed"), "test": number((r.get("metrics") or {}).get("test_top1")),
                    "run_id": r.get("run_id"), "status": r.get("status"), "href": _href(r.get("_path"), out)}
                   for r in finals],
        "curves": {"select": _history(select_record),
                   "finals": [{"seed": r.get("seed"), "history": _history(r)} for r in finals]},
        "config": first.get("config"), "env": first.get("env"), "preprocessing": first.get("preprocessing"),
    })


PAIR_FIELDS = ("diff", "ci", "p", "significant", "test")


def pairs(df: pd.DataFrame, index: dict[tuple, int]) -> tuple[dict[str, list], list[str]]:
    """(``"i,j"`` (row indices) -> cell i against cell j as the stats table formats it, ``PAIR_FIELDS``
    with the test as an index into the second item, the tests' names): compact, as a page of 10,000
    records holds tens of thousands of pairs."""
    out, tests = {}, {}
    for r in pairwise_stats(df).itertuples(index=False):
        where = (str(r.model), str(r.protocol), str(r.dataset))
        i, j = index.get((*where, r.a)), index.get((*where, r.b))
        if i is None or j is None:
            continue
        text = comparison_text(r.diff, r.diff_lo, r.diff_hi, r.p)
        out[f"{i},{j}"] = [text["diff"], text["ci"], text["p"], text["significant"], tests.setdefault(r.test, len(tests))]
    return out, list(tests)


def pivots(df: pd.DataFrame) -> list[dict]:
    """The accuracy table (mean ± std) of each (model, protocol) that holds several datasets."""
    out = []
    for (model, protocol), table in accuracy_tables(df, interval=False).items():
        ok = final_ok(df)
        datasets = set(ok[(ok["model"].astype(str) == model) & (ok["protocol"].astype(str) == protocol)]["dataset"].astype(str))
        if len(datasets) < 2:
            continue
        out.append({"model": model, "protocol": protocol, "labels": [str(c) for c in table.columns],
                    "rows": [{"name": str(name), "summary": str(name) not in datasets,
                              "cells": [table_cell(v)[0] for v in values]} for name, values in table.iterrows()]})
    return out


def figures(out: Path) -> list[dict]:
    """Every PNG under the page's folder (record folders left out), by folder then name."""
    found = []
    for path in sorted(out.rglob("*.png")):
        rel = path.relative_to(out)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]):
            continue
        found.append({"href": rel.as_posix(), "folder": rel.parent.as_posix() if rel.parent != Path(".") else "",
                      "name": rel.name})
    return sorted(found, key=lambda f: (f["folder"], f["name"]))


def tables_files(out: Path) -> list[str]:
    """The tables (.md, .csv) beside the page and one folder down (a layer sweep's, a report's)."""
    found = [p for pattern in ("*", "*/*") for p in out.glob(pattern)
             if p.suffix in (".md", ".csv") and p.is_file() and not set(p.relative_to(out).parts[:-1]) & set(SKIP_DIRS)]
    return sorted((p.relative_to(out).as_posix() for p in found), key=lambda f: (f.count("/"), f))


def _subtitle(out: Path) -> str:
    """The first heading of the folder's README, or "part of: ..." its parent's (a study's layer sweep)."""
    for folder, prefix in ((out, ""), (out.parent, "part of: ")):
        readme = folder / "README.md"
        if readme.is_file():
            for line in readme.read_text(errors="replace").splitlines():
                if line.startswith("# "):
                    return prefix + line[2:].strip()
    return ""


def page_data(records: list[dict], df: pd.DataFrame, out: str | os.PathLike, source: str | os.PathLike,
              bad: int = 0) -> dict:
    """Everything the page embeds for the records under ``source``, the page living in ``out``."""
    out = Path(out)
    cells = cell_summaries(df)
    columns, rows = rows_and_columns(df, cells)
    seen: dict[str, int] = {}
    for r in rows:  # the id a link names a row by: its cell's id, made unique should two rows share one
        seen[r["id"]] = seen.get(r["id"], 0) + 1
        r["id"] += f"-{seen[r['id']]}" if seen[r["id"]] > 1 else ""
    index = {(r["model"], r["protocol"], r["dataset"], r["label"]): i for i, r in enumerate(rows)}
    by_id = {r.get("run_id"): r for r in records}
    recipes = recipe_tables(df)
    details = []
    for r in rows:
        key = (r["model"], r["protocol"], r["dataset"], r["label"])
        rt = recipes.get(key[:3])
        recipe = ({c: str(v) for c, v in rt.loc[r["label"]].items()} if rt is not None and r["label"] in rt.index
                  else None)
        details.append(cell_detail(cells[key], by_id, out, recipe))
    pair_table, pair_tests = pairs(df, index)
    finished = df["finished_at"].dropna().astype(str)
    name = out.resolve().name
    if not (out / "README.md").is_file() and (out.parent / "README.md").is_file():
        name = f"{out.resolve().parent.name} / {name}"
    return plain({
        "meta": {"title": name, "subtitle": _subtitle(out), "source": _href(source, out) or ".",
                 "records": int(df["run_id"].nunique()), "unreadable": bad,
                 "statuses": {str(k): int(v) for k, v in df.drop_duplicates("run_id")["status"].value_counts().items()},
                 "last_finished": finished.max() if len(finished) else None, "row_cap": ROW_CAP},
        "columns": columns,
        "costs": {key: label for key, label, _ in COSTS.values()},
        "rows": rows,
        "details": details,
        "pairs": pair_table, "pair_fields": list(PAIR_FIELDS), "pair_tests": pair_tests,
        "pivots": pivots(df),
        "figures": figures(out),
        "tables": tables_files(out),
    })
