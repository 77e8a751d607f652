"""A method's declared search space (``method.space``) and the two rules the protocol applies to it:
the draw (which N points every method gets) and the edge rule (where a key's space moves outward).

A space maps keys to candidate lists; a bare key is ``trainer.KEY``, a dotted key a config path
(``method.layers``). Only the method's own hyper-parameters may be searched: a key naming the protocol,
the data, the seed or the model would let a space change what a select run is (a select run that opens
test, a search over splits), so it is refused.

Natural bounds (``protocol.bounds`` for the trainer keys every method shares, ``method.bounds`` for a
method's own keys; ``[low, high]``, null = none) are values a key cannot pass: a chosen value at its
bound is not on an edge, and an extension never passes it.
"""
from __future__ import annotations

import itertools
import json
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError

# The only roots a space key may have, and the keys under them that are not hyper-parameters.
SEARCHABLE_ROOTS = ("trainer", "method")
NOT_SEARCHABLE = ("method.name", "method.head", "method.space", "method.bounds", "method.recipe")


def plain(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def config_path(key: str) -> str:
    """A space key's config path: a bare key is a trainer key."""
    return key if "." in key else f"trainer.{key}"


def _flat(grid, prefix: str = "", what: str = "method.space") -> dict:
    """``{method: {layers: [..]}}`` (as ``method.space.method.layers=[..]`` makes it) -> dotted keys."""
    if not isinstance(grid, dict):
        raise ConfigError(f"{what} must map keys to lists, got {grid!r}")
    out = {}
    for key, value in grid.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}.", what))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _refuse_unsearchable(key: str) -> None:
    path = "seed" if key in ("seed", "trainer.seed") else config_path(key)  # a bare `seed` means the run's seed
    root = path.split(".")[0]
    if root in SEARCHABLE_ROOTS and not any(path == k or path.startswith(k + ".") for k in NOT_SEARCHABLE):
        return
    what = {"protocol": "a protocol setting", "dataset": "a dataset setting", "seed": "the seed",
            "model": "the model", "paths": "an output path"}.get(root, "not a hyper-parameter of the method")
    raise ConfigError(f"method.space key {key!r} names {what} ({path}): a search space holds the method's own "
                      "hyper-parameters (trainer.* and method.* keys) only; the split, the stage and the seeds "
                      "are the protocol's (protocol.seeds, protocol.select_seed). Remove the key from the space")


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def dedupe(values: list, what: str, notes: list | None) -> list:
    """``values`` without repeats (first occurrence kept, order kept); a note says what was merged."""
    seen, out = set(), []
    for v in values:
        c = _canon(float(v) if is_number(v) else v)  # 0.1 and 1e-1 are one candidate
        if c not in seen:
            seen.add(c)
            out.append(v)
    if len(out) < len(values) and notes is not None:
        repeated = sorted({_canon(v) for v in values if sum(_canon(w) == _canon(v) for w in values) > 1})
        notes.append(f"{what} lists {', '.join(repeated)} more than once: merged, each counted once "
                     f"({len(values)} entries -> {len(out)} distinct)")
    return out


def space_of(cfg: DictConfig, notes: list | None = None) -> dict:
    """The method's declared search space (``method.space``) as ``dotted key -> candidate list``; a key
    set to null is not searched (a layer sweep fixes ``method.layers`` that way). Repeated candidates
    are merged (``notes`` says so); keys that are not the method's hyper-parameters are refused."""
    raw = cfg.method.get("space")
    flat = _flat(plain(raw) or {}) if raw is not None else {}
    space = {k: v for k, v in flat.items() if v is not None}
    bad = {k: v for k, v in space.items() if not isinstance(v, list) or not v}
    if bad:
        raise ConfigError(f"method.space must map keys to non-empty lists of candidates, got {bad!r}")
    for key in space:
        _refuse_unsearchable(key)
    return {k: dedupe(v, f"method.space.{k}", notes) for k, v in space.items()}


def bounds_of(cfg: DictConfig, space: dict) -> dict:
    """Natural bounds of the space's keys: ``key -> (low, high)`` (None: unbounded), ``method.bounds``
    over ``protocol.bounds``. Only keys of the space are kept."""
    merged = {}
    for where, node in (("protocol.bounds", cfg.protocol.get("bounds")), ("method.bounds", cfg.method.get("bounds"))):
        for key, pair in (_flat(plain(node), what=where) if node is not None else {}).items():
            ok = (isinstance(pair, list) and len(pair) == 2
                  and all(v is None or is_number(v) and math.isfinite(v) for v in pair)
                  and (None in pair or pair[0] <= pair[1]))
            if not ok:
                raise ConfigError(f"{where}.{key}={pair!r} must be [low, high] with numbers or null (no bound), "
                                  "low <= high; e.g. weight_decay: [0.0, null]")
            merged[key] = (pair[0], pair[1])
    return {k: v for k, v in merged.items() if k in space}


def grid_points(grid: dict) -> list[dict]:
    """Cartesian product in config order: the first key varies slowest."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def space_size(space: dict | None) -> int:
    return math.prod(len(v) for v in space.values()) if space else 1


def halton_points(space: dict, count: int, seed: int = 0) -> list[dict]:
    """The first ``count`` distinct points (at most the whole space) of a scrambled Halton sequence
    (scipy.stats.qmc, seeded) over the candidate indices, each coordinate u in [0, 1) picking candidate
    floor(u * n). A longer list starts with every shorter one: the sequence only extends."""
    from scipy.stats import qmc

    keys = list(space)
    sizes = [len(space[k]) for k in keys]
    count = min(count, space_size(space))
    sampler = qmc.Halton(d=len(keys), scramble=True, seed=seed)
    seen, points = set(), []
    while len(points) < count:  # duplicates (two u's in one cell) are skipped: distinct points
        for u in sampler.random(max(count, 8)):
            idx = tuple(min(int(x * n), n - 1) for x, n in zip(u, sizes))
            if idx not in seen:
                seen.add(idx)
                points.append({k: space[k][i] for k, i in zip(keys, idx)})
                if len(points) == count:
                    break
    return points


def draw(space: dict, budget: int, seed: int = 0) -> tuple[list[dict], str]:
    """The select points of one method: ``(points, rule)``, by one rule shared by every method.

    The whole grid when the space has ``budget`` points or fewer; otherwise the first ``budget``
    points of :func:`halton_points`. Halton rather than Sobol: its balance does not require a
    power-of-two number of points. The same seed gives every method with the same space shape the
    same points.
    """
    if not space:
        return [{}], "grid"
    if space_size(space) <= budget:
        return grid_points(space), "grid"
    return halton_points(space, budget, seed), f"halton(seed={seed})"


def next_points(space: dict, rule: str, taken: list[dict], count: int, seed: int = 0) -> list[dict]:
    """Up to ``count`` further points of the draw's own sequence that are not in ``taken``: the Halton
    sequence continued; none when the draw was the whole grid (it is exhausted)."""
    if rule == "grid" or not space:
        return []
    have = {_canon(p) for p in taken}
    extra = [p for p in halton_points(space, len(taken) + count, seed) if _canon(p) not in have]
    return extra[:count]


# --- the edge rule ----------------------------------------------------------------------------------

def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def ordered(values: list) -> bool:
    """A key the edge rule applies to: every candidate a number, at least two distinct ones."""
    return all(is_number(v) for v in values) and len({float(v) for v in values}) >= 2


def _tidy(x: float) -> float:
    return float(f"{x:.12g}")  # 0.3 * 3 is 0.8999999999999999; the config and the run id get 0.9


def extension(values: list, side: str, bound: float | None) -> float | int | None:
    """The next candidate beyond ``values``' ``side`` end ('low' or 'high'): the end times the ratio of
    the two outermost candidates there when both are positive (log-spaced keys: lrs, weight decays),
    else the end plus their difference; clipped to the natural ``bound``; None when the end already
    is the bound. Integer candidates give an integer."""
    nums = sorted({float(v) for v in values})
    end, inner = (nums[0], nums[1]) if side == "low" else (nums[-1], nums[-2])
    if bound is not None and end == bound:
        return None
    new = end * (end / inner) if end > 0 and inner > 0 else end + (end - inner)
    if all(isinstance(v, int) for v in values):
        new = round(new)
        if new == end:
            new = end + (1 if side == "high" else -1)
    if bound is not None and (new < bound if side == "low" else new > bound):
        new = bound
    return int(new) if all(isinstance(v, int) for v in values) else _tidy(new)


def edges(candidates: dict, bounds: dict, point: dict) -> list[tuple[str, str]]:
    """``(key, 'low'|'high')`` for every ordered key whose value in ``point`` is an end of its
    candidates (as extended so far) and not a natural bound. Without a declared bound, 0 at the low
    end of a key is its natural bound (a weight decay cannot go below 0), as before bounds existed."""
    out = []
    for key, values in candidates.items():
        if key not in point or not ordered(values) or not is_number(point[key]):
            continue
        low, high = bounds.get(key, (None, None))
        nums = [float(v) for v in values]
        v = float(point[key])
        if v == min(nums) and v != (low if low is not None else 0.0):
            out.append((key, "low"))
        elif v == max(nums) and v != high:
            out.append((key, "high"))
    return out


def edge_flags(grid: dict, chosen: dict, bounds: dict | None = None) -> list[str]:
    """``key=low|high`` for every ordered key whose chosen value is an end of its candidates (see
    :func:`edges`): what tables mark as an edge unresolved."""
    return [f"{k}={side}" for k, side in edges(grid, bounds or {}, chosen)]
