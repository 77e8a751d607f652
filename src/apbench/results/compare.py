"""Two protocols on one records folder, side by side: the study before and after the edge rule.

A study relaunched under the edge rule reuses its records by run id, so one folder then holds both
searches: the final runs of a choice that did not move are shared (their ``hparams.selected_from`` lists
both selections), those of a choice that moved are new. Here the records are split by selection -- a
each half gets the methods table of
``apbench results``, and the two are put next to each other per method, with what moved and what the
rule did with each edge. A selection is the edge rule's when it has reserve runs or a retest.

    python -m apbench.results.compare RUNS_DIR [--out FILE.md] [--split-to DIR]

``--split-to DIR`` writes the two halves as record folders, ``DIR/old`` and ``DIR/new``, so that
``apbench results DIR/new`` makes every table of the study as the edge rule sees it.
"""
from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path

import pandas as pd

from .cells import selections
from .frame import records_frame
from .recipe_table import recipe_tables
from .rows import label_order
from .store import iter_records, write_record
from .tables import method_tables, to_markdown


def is_rule(selection: dict) -> bool:
    """A selection made under the edge rule: it has reserve runs or a retest (records from before the
    rule have neither key; a protocol with ``reserve=0, retest=0`` is the old one)."""
    if not isinstance(selection, dict):
        return False
    retest = selection.get("retest") if isinstance(selection.get("retest"), dict) else {}
    return bool(selection.get("reserve")) or bool(retest.get("points"))


def split(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(records as the old protocol saw them, as the edge rule saw them): each final run keeps only the
    selections of that side (and is left out of a side none of its selections belong to); select runs
    are in both (the curves' and convergence's source)."""
    sides = ([], [])
    for r in records:
        if r.get("stage") != "final" or not selections(r):
            for side in sides:
                side.append(r)
            continue
        for side, rule in zip(sides, (False, True)):
            mine = [s for s in selections(r) if is_rule(s) == rule]
            if mine:
                c = copy.deepcopy(r)
                c["hparams"]["selected_from"] = mine[0] if len(mine) == 1 else mine
                side.append(c)
    return sides


def _base(label: str) -> str:
    """The method without its layer (AP's layer is a choice that may move): ``ap@8`` -> ``ap``."""
    return re.sub(r"@[^\[\s{]*", "", label)


def _chosen(sel: dict) -> dict:
    return (sel or {}).get("chosen") or {}


def _fmt(v) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v))
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _selection_by_label(df: pd.DataFrame) -> dict[tuple, dict]:
    ok = df[(df["status"] == "ok") & (df["stage"] == "final")]
    out = {}
    for row in ok.itertuples():
        out.setdefault((row.model, row.protocol, row.dataset_label, row.label), row.selection)
    return out


def _moved(old: dict, new: dict) -> str:
    a, b = _chosen(old), _chosen(new)
    moves = [f"{k} {_fmt(a.get(k))} -> {_fmt(b.get(k))}" for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return "; ".join(moves) or "nothing"


def _edges(new: dict) -> str:
    edges = (new or {}).get("edges") or {}
    parts = []
    for key, e in edges.items():
        if e.get("status") in ("resolved", "edge unresolved"):
            added = ", ".join(_fmt(v) for v in e.get("extended") or [])
            parts.append(f"{key} {e['status']}" + (f" (tried {added})" if added else ""))
    return "; ".join(parts) or "-"


def side_by_side(records: list[dict]) -> dict[tuple[str, str, str], pd.DataFrame]:
    """{(model, protocol, dataset): table}: per method, the old and the new test top-1 (with † where an
    edge is unresolved), the point each chose on val, what moved, and the edges the rule resolved."""
    old_records, new_records = split(records)
    frames = [records_frame(old_records), records_frame(new_records)]
    methods = [method_tables(f) for f in frames]
    recipes = [recipe_tables(f) for f in frames]
    sels = [_selection_by_label(f) for f in frames]
    out = {}
    for key in sorted(set(methods[0]) | set(methods[1])):
        rows = {}
        for side, name in enumerate(("old", "new")):
            table, recipe = methods[side].get(key), recipes[side].get(key)
            for label in ([] if table is None else table.index):
                row = rows.setdefault(_base(label), {})
                row[f"{name}: label"] = label
                row[f"{name}: test top-1"] = table.loc[label, "test top-1"]
                row[f"{name}: val (selection)"] = table.loc[label, "val (selection)"]
                row[f"{name}: N select"] = table.loc[label, "N select"]
                row[f"{name}: chosen on val"] = (recipe.loc[label, "chosen on val"]
                                                 if recipe is not None and label in recipe.index else "-")
                row[f"{name}: selection"] = sels[side].get((*key, label))
        lines = []
        for base in label_order(rows):
            r = rows[base]
            lines.append({"method": base,
                          "old test top-1": r.get("old: test top-1", "-"), "old: chosen on val": r.get("old: chosen on val", "-"),
                          "new test top-1": r.get("new: test top-1", "-"), "new: chosen on val": r.get("new: chosen on val", "-"),
                          "val (selection) old -> new": f"{r.get('old: val (selection)', '-')} -> {r.get('new: val (selection)', '-')}",
                          "select runs old -> new": f"{r.get('old: N select', '-')} -> {r.get('new: N select', '-')}",
                          "moved": _moved(r.get("old: selection"), r.get("new: selection"))
                          if r.get("old: selection") and r.get("new: selection") else "-",
                          "edges (edge rule)": _edges(r.get("new: selection"))})
        out[key] = pd.DataFrame(lines).set_index("method")
    return out


def split_to(records: list[dict], dest: Path) -> tuple[int, int]:
    """The two halves of :func:`split` as record folders ``dest/old`` and ``dest/new``; their sizes.
    Each copy keeps its original's ``_path`` (``iter_records`` leaves a stored one alone), so tables and
    the results browser built from a half link to the records that stay, not to the throw-away copies."""
    sizes = []
    for name, side in zip(("old", "new"), split(records)):
        for r in side:
            if "_path" not in r:
                raise ValueError(f"record {r.get('run_id')} has no _path: split records read by iter_records")
            write_record(Path(dest) / name / str(r.get("run_id")) / "record.json", r)
        sizes.append(len(side))
    return sizes[0], sizes[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m apbench.results.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, help="a folder of run records (searched recursively)")
    ap.add_argument("--out", type=Path, default=None, help="write the tables as markdown here too")
    ap.add_argument("--split-to", type=Path, default=None, metavar="DIR", help="write the two halves to DIR/old and DIR/new")
    a = ap.parse_args(argv)
    records = list(iter_records(a.runs))
    tables = side_by_side(records)
    if a.split_to:
        old, new = split_to(records, a.split_to)
        print(f"records as the old protocol saw them: {old} in {a.split_to / 'old'}; as the edge rule: {new} in "
              f"{a.split_to / 'new'}")
    text = "\n\n".join(f"## {model}, {protocol}, {dataset}: before and after the edge rule\n\n{to_markdown(t)}"
                       for (model, protocol, dataset), t in tables.items()) or "no final runs"
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    import signal
    if hasattr(signal, "SIGPIPE"):  # `... | head` ends quietly, as `apbench results` does
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
