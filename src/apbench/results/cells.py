"""Which runs form one table cell: runs that differ in the seed alone.

A cell is identified by its *key*: the run's resolved config without the seed, without the options
that do not change results (``identity.NOT_IDENTITY``) and, for a selection protocol's final runs,
without the keys the protocol searched (they are the protocol's choice, not the experiment), plus
what the run actually loaded (dataset name, model, weights, input digests) and the selection's own
identity (search space / grid, rule, budget, select seed; not the chosen point or its scores).
Two final runs of one search that chose different points therefore stay one cell, while any other
difference (an lr scale, the epochs, the protocol, the weights, the image folder) makes another.

Records without a config (hand-written, or very old) fall back to their top-level fields and
``hparams``. A final run that several selections reached (``hparams.selected_from`` a list) belongs
to each of their cells.
"""
from __future__ import annotations

import copy
import hashlib
import json

from ..identity import NOT_IDENTITY

# Entries of a selection that are its outcome, not its identity.
# Under the edge rule the points themselves are partly outcome (an extension lies beyond the best point, a
# retest repeats the top k), as are the chosen index, the compute spent and the edges left: the same search
# on two datasets is the same cell column.
SELECTION_OUTCOME = ("chosen", "val_top1", "val_loss", "run_id", "run_ids", "runs", "chosen_score", "retested", "edges",
                     "points", "chosen_index", "compute", "edge_flags")
# hparams entries a protocol adds that are bookkeeping or outcome, not part of the experiment.
PROTOCOL_HPARAMS = ("edge_flags", "selected_from", "grid_size", "grid_point", "search")
# Top-level record fields that say what was run (i16-lifecycle's fields where present).
WHAT_WAS_RUN = ("dataset", "model", "weights", "num_classes")


def selections(record: dict) -> list[dict]:
    """The selections that chose this final run's point: ``hparams.selected_from`` as a list."""
    sel = (record.get("hparams") or {}).get("selected_from")
    if isinstance(sel, dict):
        return [sel]
    if isinstance(sel, list):
        return [s for s in sel if isinstance(s, dict)]
    return []


def edge_flags_of(record: dict, selection: dict | None) -> list:
    """The edges left unresolved by ``selection`` (the search whose cell a row is): its own
    ``edge_flags`` where it has them. ``hparams.edge_flags`` is the first search's only: a final run a
    later search reached too (the edge rule's relaunch) would otherwise show the first search's edges
    in the later search's cell."""
    if isinstance(selection, dict) and isinstance(selection.get("edge_flags"), list):
        return selection["edge_flags"]
    return (record.get("hparams") or {}).get("edge_flags") or []


def chosen_point(points, index) -> dict | None:
    """The scored point a selection chose: ``val_top1[chosen_index]`` of a selection (a dict with the
    point's values, ``val_top1``, ``val_loss`` and the select run's ``run_id``), None where it says none."""
    if not isinstance(points, list) or not isinstance(index, (int, float)) or index != index:  # NaN != NaN
        return None
    if not 0 <= int(index) < len(points):
        return None
    point = points[int(index)]
    return point if isinstance(point, dict) else None


def searched_keys(selection: dict) -> list[str]:
    """Config paths a selection searched: the keys of ``space`` (i14 records) or of ``grid`` (older).
    A bare key is a trainer key (``lr`` -> ``trainer.lr``), a dotted key a full path."""
    space = selection.get("space")
    if not isinstance(space, dict):
        space = selection.get("grid") if isinstance(selection.get("grid"), dict) else {}
    return [k if "." in k else f"trainer.{k}" for k in space]


def _drop(tree: dict, path: str) -> None:
    parts = path.removesuffix(".*").split(".")
    node = tree
    for p in parts[:-1]:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def _scrub(value):
    """A selection without its outcome, also inside nested points (``points: [{..., run_id}]``)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in SELECTION_OUTCOME}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def cell_key(record: dict, selection: dict | None = None) -> dict:
    """The identity of ``record``'s cell (reached by ``selection``, if any) as plain data."""
    searched = searched_keys(selection) if selection else []
    config = copy.deepcopy(record.get("config") or {})
    key: dict = {}
    if config:
        _mark_derived(config, searched)
        for path in (*NOT_IDENTITY, "seed", *searched):
            _drop(config, path)
        key["config"] = config
    else:  # no config: the record's own summary fields stand in for it
        hp = {k: v for k, v in (record.get("hparams") or {}).items() if k not in PROTOCOL_HPARAMS}
        for path in searched:
            hp.pop(path.removeprefix("trainer."), None)
        key["record"] = {k: record.get(k) for k in ("protocol", "stage", "method", "head")}
        key["record"]["layers"] = [str(v) for v in record.get("layers") or []]
        key["record"]["hparams"] = hp
    key.update({k: record[k] for k in WHAT_WAS_RUN if record.get(k) is not None})
    inputs = (record.get("identity") or {}).get("inputs")
    if inputs:
        key["inputs"] = inputs
    if selection:
        key["selected_from"] = _scrub(selection)
    return key


def _mark_derived(config: dict, searched: list[str]) -> None:
    """A trainer key the recipe derives from a searched one follows the choice: ``recipes.resolve`` sets a
    null head_lr to the lr, so a search over lr alone moves head_lr too. Marked as following, not dropped,
    so that a head_lr fixed at another value stays another cell."""
    t = config.get("trainer") if isinstance(config.get("trainer"), dict) else None
    recipe = (config.get("method") or {}).get("recipe") or {}
    if (t is not None and "trainer.lr" in searched and "trainer.head_lr" not in searched
            and recipe.get("head_lr") is None and t.get("head_lr") == t.get("lr")):
        t["head_lr"] = "= lr"


def cell_id(key: dict) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def flatten(tree, prefix: str = "") -> dict:
    """Dotted leaves; empty sections count as absent (``lr_scale: {}`` is no lr scale)."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def is_dataset_key(path: str) -> bool:
    """Leaves that say which data was used: they label rows (datasets), not columns."""
    return (path.startswith("config.dataset.") or path in ("dataset", "num_classes")
            or path == "inputs.data")


def short_name(path: str) -> str:
    """``config.trainer.epochs`` -> ``epochs``, ``config.method.lr_scale.prompt`` -> ``method.lr_scale.prompt``."""
    for prefix in ("config.trainer.", "config.", "record.hparams.", "record."):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def differences(keys: list[dict]) -> list[str]:
    """For cells that would otherwise share a label: each one's ``{k=v, ...}`` over the leaves in
    which they differ ('' for all when there is only one distinct key)."""
    flat = [flatten(k) for k in keys]
    leaves = sorted({p for f in flat for p in f})
    differ = [p for p in leaves if len({_text(f.get(p)) for f in flat}) > 1]
    return ["" if not differ else "{" + ", ".join(f"{short_name(p)}={_text(f.get(p))}" for p in differ) + "}"
            for f in flat]
