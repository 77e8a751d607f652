"""Protocols: one Hydra job runs a whole protocol for its cell as a sequence of ordinary runs.

A protocol config with a ``grid`` (vtab1k, fgvc, auto) becomes

    select runs   one per grid point: train on train, score on val (stage=select, test never opened)
    final runs    one per seed: the best grid point, train on train(+val), report test (stage=final)

Every step is a plain :func:`apbench.run.run` call with its own record, so a relaunched or requeued
job skips what finished and resumes what was interrupted. Each run's config carries only the protocol
``name`` and ``stage``: the run id then names what was computed (the grid point, the split, the seed),
so widening the grid or adding seeds later reuses every run already done. ``fixed`` runs unchanged.
"""
from __future__ import annotations

import copy
import itertools
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from .validate import ConfigError

_ABSENT = object()


def _plain(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _flat(grid, prefix: str = "") -> dict:
    """``{method: {num_tokens: [..]}}`` (as ``+protocol.grid.method.num_tokens=[..]`` makes it) -> dotted keys."""
    if not isinstance(grid, dict):
        raise ConfigError(f"protocol.grid must map keys to lists of values, got {grid!r}")
    out = {}
    for key, value in grid.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resolve(cfg: DictConfig) -> dict:
    """The protocol this job runs, as plain data: ``{"name", "grid", "seeds", "select_seed", "final_trainval"}``;
    ``grid`` is None for a single fixed run. ``auto`` becomes the dataset's own protocol."""
    p = cfg.protocol
    name = p.name
    if name == "auto":
        name = cfg.dataset.get("protocol") or "fixed"
        by = _plain(p.get("final_trainval_by_protocol")) or {}
        if name not in by:
            return {"name": name, "grid": None}
        final_trainval = bool(by[name])
    else:
        final_trainval = bool(p.get("final_trainval", True))
    if p.get("grid") is None:
        return {"name": name, "grid": None}
    grid = _flat(_plain(p.grid))
    if not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"protocol.grid must map keys to non-empty lists, got {grid!r}")
    seeds = _plain(p.get("seeds", [0]))
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"protocol.seeds must be a positive count or a list of integers, got {seeds!r}")
    return {"name": name, "grid": grid, "seeds": seeds, "select_seed": int(p.get("select_seed", 0)),
            "final_trainval": final_trainval}


def grid_points(grid: dict) -> list[dict]:
    """Cartesian product in config order: the first key varies slowest (this order breaks ties)."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def grid_size(grid: dict | None) -> int:
    return len(grid_points(grid)) if grid else 1


def runs_of(cfg: DictConfig) -> int:
    """Runs one job makes: 1 for fixed, grid size + seeds for a selection protocol."""
    p = resolve(cfg)
    return 1 if p["grid"] is None else grid_size(p["grid"]) + len(p["seeds"])


def choose(scores: list[float | None]) -> int | None:
    """Index of the best val score; ties go to the first in grid order; failed points (None) never win."""
    best = None
    for i, s in enumerate(scores):
        if s is not None and (best is None or s > scores[best]):
            best = i
    return best


def edge_flags(grid: dict, chosen: dict) -> list[str]:
    """``key=low|high`` for every numeric key whose chosen value is an end of its (>1 value) range.

    0 at the low end is not flagged: a weight decay of 0 cannot be extended further, so it says
    nothing about the grid being too narrow.
    """
    flags = []
    for key, values in grid.items():
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(set(nums)) < 2 or len(nums) != len(values):
            continue
        if chosen[key] == min(nums) and chosen[key] != 0:
            flags.append(f"{key}=low")
        elif chosen[key] == max(nums):
            flags.append(f"{key}=high")
    return flags


def _path(key: str) -> str:
    return key if "." in key else f"trainer.{key}"


def stage_config(cfg: DictConfig, name: str, stage: str, point: dict, seed: int,
                 trainval: bool | None) -> DictConfig:
    """``cfg`` for one step: the grid point's values set, the split chosen (None: as configured), the
    protocol reduced to name + stage (so the run id does not depend on the grid or the seed list)."""
    c = copy.deepcopy(cfg)
    with open_dict(c):
        c.protocol = {"name": name, "stage": stage}
        c.seed = seed
        if trainval is not None:
            if "trainval" not in c.dataset:
                raise ConfigError(f"dataset {c.dataset.get('name')!r} has no `trainval` switch; "
                                  f"protocol {name!r} needs one")
            c.dataset.trainval = trainval
        for key, value in point.items():
            if OmegaConf.select(c, _path(key), default=_ABSENT) is _ABSENT:
                raise ConfigError(f"protocol.grid key {key!r}: {_path(key)} is not in the config")
            OmegaConf.update(c, _path(key), value, merge=False)
    return c


def run_protocol(cfg: DictConfig, run=None) -> list[dict]:
    """Run the protocol of ``cfg`` for its cell; returns every record (select first, then final)."""
    if run is None:
        from .run import run
    p = resolve(cfg)
    if p["grid"] is None:
        if p["name"] == cfg.protocol.name:
            return [run(cfg)]  # fixed: the config as given, so its run id is the one `apbench run` always had
        return [run(stage_config(cfg, p["name"], "final", {}, cfg.seed, trainval=None))]

    grid, points = p["grid"], grid_points(p["grid"])
    size = len(points)
    records = []
    for i, point in enumerate(points):
        c = stage_config(cfg, p["name"], "select", point, p["select_seed"], trainval=False)
        records.append(run(c, hparams={"grid_size": size, "grid_point": i}))
    scores = [(r.get("metrics") or {}).get("val_top1") if r.get("status") == "ok" else None for r in records]
    best = choose(scores)
    if best is None:
        print(f"[apbench] protocol {p['name']}: every select run failed; no final runs")
        return records
    chosen = points[best]
    selection = {
        "grid_size": size,
        "selected_from": {"grid": grid, "select_seed": p["select_seed"], "chosen": chosen,
                          "val_top1": [{**pt, "val_top1": s, "run_id": r.get("run_id")}
                                       for pt, s, r in zip(points, scores, records)]},
        "edge_flags": edge_flags(grid, chosen),
    }
    print(f"[apbench] protocol {p['name']}: chose {chosen} (val {scores[best]:.2f})"
          + (f", on the grid's edge: {', '.join(selection['edge_flags'])}" if selection["edge_flags"] else ""))
    for seed in p["seeds"]:
        c = stage_config(cfg, p["name"], "final", chosen, seed, trainval=p["final_trainval"])
        records.append(run(c, hparams=selection))
    return records
