"""Protocols: one Hydra job runs a whole protocol for its cell as a sequence of ordinary runs.

A protocol config with a ``budget`` N (vtab1k, fgvc, auto) becomes

    select runs   N points of the method's own declared space (``method.space``), drawn by one rule for
                  every method (:func:`draw`): train on train, score on val (stage=select, test never opened)
    final runs    one per seed: the best point, train on train(+val), report test (stage=final)

Every step is a plain :func:`apbench.run.run` call with its own record, so a relaunched or requeued
job skips what finished and resumes what was interrupted. Each run's config carries only the protocol
``name`` and ``stage``: the run id then names what was computed (the grid point, the split, the seed),
so widening a space or adding seeds later reuses every run already done. ``fixed`` runs unchanged.
"""
from __future__ import annotations

import copy
import itertools
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from .errors import ConfigError

_ABSENT = object()


def _plain(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _flat(grid, prefix: str = "") -> dict:
    """``{method: {layers: [..]}}`` (as ``method.space.method.layers=[..]`` makes it) -> dotted keys."""
    if not isinstance(grid, dict):
        raise ConfigError(f"method.space must map keys to lists of candidates, got {grid!r}")
    out = {}
    for key, value in grid.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def space_of(cfg: DictConfig) -> dict:
    """The method's declared search space (``method.space``) as ``dotted key -> candidate list``; a key
    set to null is not searched (a layer sweep fixes ``method.layers`` that way)."""
    raw = cfg.method.get("space")
    flat = _flat(_plain(raw) or {}) if raw is not None else {}
    space = {k: v for k, v in flat.items() if v is not None}
    bad = {k: v for k, v in space.items() if not isinstance(v, list) or not v}
    if bad:
        raise ConfigError(f"method.space must map keys to non-empty lists of candidates, got {bad!r}")
    return space


def resolve(cfg: DictConfig) -> dict:
    """The protocol this job runs, as plain data: ``{"name", "space", "budget", "sampler_seed", "seeds",
    "select_seed", "final_trainval"}``; ``space`` is None for a single fixed run. ``auto`` becomes the
    dataset's own protocol."""
    p = cfg.protocol
    name = p.name
    if name == "auto":
        name = cfg.dataset.get("protocol") or "fixed"
        by = _plain(p.get("final_trainval_by_protocol")) or {}
        if name not in by:
            return {"name": name, "space": None}
        final_trainval = bool(by[name])
    else:
        final_trainval = bool(p.get("final_trainval", True))
    if p.get("budget") is None:
        return {"name": name, "space": None}
    budget = p.budget
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ConfigError(f"protocol.budget={budget!r} must be a positive integer: the select runs every method gets")
    space = space_of(cfg)
    seeds = _plain(p.get("seeds", [0]))
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"protocol.seeds must be a positive count or a list of integers, got {seeds!r}")
    return {"name": name, "space": space, "budget": budget, "sampler_seed": int(p.get("sampler_seed", 0)),
            "seeds": seeds, "select_seed": int(p.get("select_seed", 0)), "final_trainval": final_trainval}


def grid_points(grid: dict) -> list[dict]:
    """Cartesian product in config order: the first key varies slowest."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def space_size(space: dict | None) -> int:
    return math.prod(len(v) for v in space.values()) if space else 1


def draw(space: dict, budget: int, seed: int = 0) -> tuple[list[dict], str]:
    """The select points of one method: ``(points, rule)``, by one rule shared by every method.

    The whole grid when the space has ``budget`` points or fewer; otherwise the first ``budget``
    distinct points of a scrambled Halton sequence (scipy.stats.qmc, seeded) over the candidate indices,
    each coordinate u in [0, 1) picking candidate floor(u * n). Halton rather than Sobol: its balance
    does not require a power-of-two number of points. The same seed gives every method with the same
    space shape the same points.
    """
    if not space:
        return [{}], "grid"
    if space_size(space) <= budget:
        return grid_points(space), "grid"
    from scipy.stats import qmc

    keys = list(space)
    sizes = [len(space[k]) for k in keys]
    sampler = qmc.Halton(d=len(keys), scramble=True, seed=seed)
    seen, points = set(), []
    while len(points) < budget:  # duplicates (two u's in one cell) are skipped: N distinct points
        for u in sampler.random(budget):
            idx = tuple(min(int(x * n), n - 1) for x, n in zip(u, sizes))
            if idx not in seen:
                seen.add(idx)
                points.append({k: space[k][i] for k, i in zip(keys, idx)})
                if len(points) == budget:
                    break
    return points, f"halton(seed={seed})"


def runs_of(cfg: DictConfig) -> int:
    """Runs one job makes: 1 for fixed, select runs + seeds for a selection protocol."""
    p = resolve(cfg)
    return 1 if p["space"] is None else len(draw(p["space"], p["budget"], p["sampler_seed"])[0]) + len(p["seeds"])


def _depth(key) -> float:
    """A point's depth for the tie-break: block index; ``input`` before the stem; module paths unknown (0)."""
    text = str(key)
    return -1.0 if text == "input" else float(text) if text.lstrip("-").isdigit() else 0.0


def cost_of(record: dict) -> tuple:
    """Smaller is cheaper: the deeper first trained point (a shorter backward pass, and a longer prefix
    that a cache can skip), then fewer trainable parameters. Methods whose points do not move (every
    method but AP's layer search) tie on the first and are ordered by parameters."""
    layers = record.get("layers") or []
    depth = min((_depth(k) for k in layers), default=math.inf)
    return (-depth, (record.get("params") or {}).get("trainable") or 0)


def choose(scores: list[dict | float | None], costs: list | None = None) -> int | None:
    """Index of the best point: highest val top-1, then lowest val loss, then the cheaper point
    (``costs``, as :func:`cost_of`), then the first drawn. Failed points (None) never win."""
    def key(i):
        s = scores[i]
        top1, loss = (s, None) if not isinstance(s, dict) else (s.get("val_top1"), s.get("val_loss"))
        return (-top1, math.inf if loss is None else loss, costs[i] if costs else (), i)
    ok = [i for i, s in enumerate(scores)
          if s is not None and (not isinstance(s, dict) or s.get("val_top1") is not None)]
    return min(ok, key=key) if ok else None


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
                raise ConfigError(f"method.space key {key!r}: {_path(key)} is not in the config "
                                  "(a bare key is trainer.KEY, a dotted key a full config path)")
            OmegaConf.update(c, _path(key), value, merge=False)
    return c


def _compute(records: list[dict]) -> dict:
    """The selection's summed compute: what choosing the point cost (tables put it beside the method)."""
    def total(path):
        vals = [r for r in (_get(rec, path) for rec in records) if isinstance(r, (int, float))]
        return sum(vals) if vals else None
    return {"train_time_s": total("efficiency.train_time_s"), "wall_time_s": total("wall_time_s"),
            "train_steps": total("optimizer.total_steps"), "runs": len(records)}


def _get(d: dict, path: str):
    for part in path.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def run_protocol(cfg: DictConfig, run=None) -> list[dict]:
    """Run the protocol of ``cfg`` for its cell; returns every record (select first, then final)."""
    if run is None:
        from .run import run
    p = resolve(cfg)
    if p["space"] is None:
        if p["name"] == cfg.protocol.name:
            return [run(cfg)]  # fixed: the config as given, so its run id is the one `apbench run` always had
        return [run(stage_config(cfg, p["name"], "final", {}, cfg.seed, trainval=None))]

    space, budget = p["space"], p["budget"]
    points, rule = draw(space, budget, p["sampler_seed"])
    search = {"budget": budget, "rule": rule}
    records = []
    cell_runs = len(points) + len(p["seeds"])

    def select(i: int) -> dict:
        c = stage_config(cfg, p["name"], "select", points[i], p["select_seed"], trainval=False)
        return run(c, hparams={"search": search | {"point_index": i}})

    for i, point in enumerate(points):
        print(f"[apbench] protocol {p['name']}: select run {i + 1} of {len(points)} (cell run {i + 1} of "
              f"{cell_runs}): {point}", flush=True)
        records.append(select(i))
    # Look once more at the runs another process held: it may have finished them while this one trained
    # its own. So the last process to finish one of the cell's select runs makes the choice; without
    # this look, two lanes that alternate through a cell both leave it undecided.
    for i in [i for i, r in enumerate(records) if r.get("skipped_because")]:
        records[i] = select(i)
    busy = [r for r in records if r.get("skipped_because")]
    if busy:  # choosing from the points that happen to be free here would shrink this method's budget
        print(f"[apbench] protocol {p['name']}: {len(busy)} of {len(points)} select runs are being trained by "
              "another process; the choice and the final runs are left to the job that finishes them "
              "(relaunch this one later to have it finish the cell)")
        return records
    ok = [r.get("status") == "ok" for r in records]
    scores = [{"val_top1": (r.get("metrics") or {}).get("val_top1"), "val_loss": (r.get("metrics") or {}).get("val_loss")}
              if good else None for r, good in zip(records, ok)]
    best = choose(scores, [cost_of(r) for r in records])
    if best is None:
        print(f"[apbench] protocol {p['name']}: every select run failed; no final runs")
        return records
    chosen = points[best]
    flags = edge_flags(space, chosen)
    per_point = [{**pt, "val_top1": (s or {}).get("val_top1"), "val_loss": (s or {}).get("val_loss"),
                  "run_id": r.get("run_id")} for pt, s, r in zip(points, scores, records)]
    selection = {
        "selected_from": {"space": space, "budget": budget, "rule": rule, "points": points,
                          "select_seed": p["select_seed"], "chosen": chosen, "chosen_index": best,
                          "val_top1": per_point,
                          "val_loss": [{**pt, "val_loss": e["val_loss"], "run_id": e["run_id"]}
                                       for pt, e in zip(points, per_point)],
                          "edge_flags": flags, "compute": _compute(records)},
        "edge_flags": flags,
    }
    print(f"[apbench] protocol {p['name']}: chose {chosen} (val {scores[best]['val_top1']:.2f}) from "
          f"{len(points)} points ({rule}, budget {budget})"
          + (f", on the space's edge: {', '.join(flags)}" if flags else ""))
    for k, seed in enumerate(p["seeds"]):
        print(f"[apbench] protocol {p['name']}: final run {k + 1} of {len(p['seeds'])} (cell run "
              f"{len(points) + k + 1} of {cell_runs}): seed {seed}", flush=True)
        c = stage_config(cfg, p["name"], "final", chosen, seed, trainval=p["final_trainval"])
        records.append(_also_reached_by(run(c, hparams=selection), c, selection["selected_from"]))
    return records


def _same_search(a: dict, b: dict) -> bool:
    keys = ("space", "grid", "budget", "rule", "select_seed", "points")
    return all(a.get(k) == b.get(k) for k in keys)


def _also_reached_by(record: dict, cfg: DictConfig, selection: dict) -> dict:
    """A final run another search already finished (same config, so the same run id) keeps that
    search's selection and gains this one: ``hparams.selected_from`` becomes a list, and the tables
    count the run in both cells (results.cells). Rewritten atomically; nothing else changes."""
    if record.get("status") != "ok":
        return record
    from .results.store import write_record
    from .run import run_dir_of, run_id_of
    hp = record.setdefault("hparams", {})
    have = hp.get("selected_from")
    have = [have] if isinstance(have, dict) else [s for s in (have or []) if isinstance(s, dict)]
    if any(_same_search(s, selection) for s in have):
        return record
    hp["selected_from"] = [*have, selection]
    write_record(run_dir_of(cfg, run_id_of(cfg)) / "record.json", record)
    print(f"[apbench] {record.get('run_id')}: final run shared with another search; its record now names both")
    return record
