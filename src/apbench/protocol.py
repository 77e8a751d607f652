"""Protocols: one Hydra job runs a whole protocol for its cell as a sequence of ordinary runs.

A protocol config with a ``budget`` N (vtab1k, fgvc, auto) becomes

    select runs   N points of the method's own declared space (``method.space``), drawn by one rule for
                  every method (:func:`search_space.draw`): train on train, score on val (stage=select,
                  test never opened)
    reserve       R more select runs (``protocol.reserve``), the same R for every cell: while the best
                  point has a key on an edge of its space, one new candidate beyond that edge at the
                  key's own outer step, tried with the best values of the other keys (the edge rule);
                  otherwise the draw's next points. Every cell costs exactly N + R select runs
    retest        the top k points (``protocol.retest``) retrained with ``protocol.retest_seeds``
                  further seeds on the same split; the best mean val top-1 wins (ties: val loss, then
                  the cheaper point). Counted in the budget: N + R + k x seeds select-stage runs
    final runs    one per seed: the chosen point, train on train(+val), report test (stage=final)

Every step is a plain :func:`apbench.run.run` call with its own record, so a relaunched or requeued
job skips what finished and resumes what was interrupted; the reserve and retest runs depend only on
the scores of runs before them, so a relaunch makes the same ones. Each run's config carries only the
protocol ``name`` and ``stage``: the run id then names what was computed (the grid point, the split,
the seed), so widening a space or adding seeds later reuses every run already done. Which phase a
run served is in its ``hparams.search.phase`` and in the final runs' ``hparams.selected_from``.
``fixed`` runs unchanged.
"""
from __future__ import annotations

import copy

from omegaconf import DictConfig, OmegaConf, open_dict

from .errors import ConfigError
from .search_space import (bounds_of, config_path, dedupe, draw, edge_flags, edges, extension, grid_points,  # noqa: F401
                           next_points, ordered, plain, space_of, space_size)
from .seed_check import SEED_MAX, check_seed
from .selection import choose, cost_of, mean_score, ranking, score_of  # noqa: F401  (re-exported)

_ABSENT = object()


def _count(value, key: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key}={value!r} must be an integer >= {minimum}")
    return value


def resolve(cfg: DictConfig) -> dict:
    """The protocol this job runs, as plain data: ``{"name", "space", "bounds", "budget", "reserve",
    "retest", "retest_seeds", "sampler_seed", "seeds", "select_seed", "final_trainval", "notes"}``;
    ``space`` is None for a single fixed run. ``auto`` becomes the dataset's own protocol. Every seed is
    checked here, before any run; repeated seeds or candidates are merged (``notes`` says so)."""
    p = cfg.protocol
    name = p.name
    if name == "auto":
        name = cfg.dataset.get("protocol") or "fixed"
        by = plain(p.get("final_trainval_by_protocol")) or {}
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
    notes: list[str] = []
    space = space_of(cfg, notes)
    seeds = plain(p.get("seeds", [0]))
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(_count(seeds, "protocol.seeds", 1)))
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError(f"protocol.seeds must be a positive count or a list of integers, got {seeds!r}")
    for i, s in enumerate(seeds):
        check_seed(s, f"protocol.seeds[{i}]")
    seeds = dedupe(seeds, "protocol.seeds", notes)
    select_seed = check_seed(p.get("select_seed", 0), "protocol.select_seed")
    sampler_seed = check_seed(p.get("sampler_seed", 0), "protocol.sampler_seed")
    reserve = _count(p.get("reserve", 0), "protocol.reserve")
    retest = _count(p.get("retest", 0), "protocol.retest")
    retest_seeds = _count(p.get("retest_seeds", 1 if retest else 0), "protocol.retest_seeds")
    if retest and not retest_seeds:
        raise ConfigError(f"protocol.retest={retest} needs protocol.retest_seeds >= 1 (the further seeds each "
                          "retested point gets); or set protocol.retest=0")
    top = select_seed + retest * retest_seeds + reserve  # the retest's seeds follow the select seed
    if top > SEED_MAX:
        raise ConfigError(f"protocol.select_seed={select_seed} leaves no room for the retest's further seeds "
                          f"(up to {top}); a seed is at most {SEED_MAX}")
    return {"name": name, "space": space, "bounds": bounds_of(cfg, space), "budget": budget, "reserve": reserve,
            "retest": retest, "retest_seeds": retest_seeds, "sampler_seed": sampler_seed, "seeds": seeds,
            "select_seed": select_seed, "final_trainval": final_trainval, "notes": notes}


def select_runs(p: dict) -> tuple[int, int, int]:
    """``(drawn, reserve, retest)`` select-stage runs of a resolved protocol: N (or the whole space
    when smaller), R, and k x retest seeds. A cell whose draw is the whole grid and hits no edge spends
    the rest of R on more seeds of its top points, so the sum is exact."""
    points, _ = draw(p["space"], p["budget"], p["sampler_seed"])
    return len(points), p["reserve"], p["retest"] * p["retest_seeds"]


def runs_of(cfg: DictConfig) -> int:
    """Runs one job makes: 1 for fixed, N + R + k x retest seeds select-stage runs + the final seeds."""
    p = resolve(cfg)
    return 1 if p["space"] is None else sum(select_runs(p)) + len(p["seeds"])


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
            if OmegaConf.select(c, config_path(key), default=_ABSENT) is _ABSENT:
                raise ConfigError(f"method.space key {key!r}: {config_path(key)} is not in the config "
                                  "(a bare key is trainer.KEY, a dotted key a full config path)")
            OmegaConf.update(c, config_path(key), value, merge=False)
    return c


def check_before_any_run(cfg: DictConfig, p: dict, points: list[dict]) -> None:
    """Every drawn point, every candidate of the space and every final seed validated before the first
    run trains, so a bad value in the last point or seed is refused up front instead of after the
    others trained (an edge extension, made later, is checked when it is made). Points that differ
    only in trainer values share one full check (the meta model build) and get the trainer checks each."""
    import json

    from .recipes import resolve as resolve_recipe
    from .validate import trainer_settings, validate

    full: set[str] = set()
    # The drawn points, then every other candidate of each key (the reserve may draw it) at the first point.
    every = list(points) + [{**points[0], k: v} for k, vs in p["space"].items() for v in vs
                            if all(pt.get(k) != v for pt in points)]
    configs = [stage_config(cfg, p["name"], "select", pt, p["select_seed"], trainval=False) for pt in every]
    configs += [stage_config(cfg, p["name"], "final", points[0], s, trainval=p["final_trainval"]) for s in p["seeds"]]
    for c in configs:
        c = resolve_recipe(c)
        key = json.dumps(OmegaConf.to_container(c, resolve=True) | {"trainer": None, "seed": None},
                         sort_keys=True, default=str)
        if key in full:
            trainer_settings(c)
        else:
            validate(c)
            full.add(key)


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


def _busy(record: dict) -> bool:
    return bool(record.get("skipped_because"))


class CellSearch:
    """The select stage of one cell: the drawn points, the reserve, the retest, and the choice."""

    def __init__(self, cfg: DictConfig, p: dict, run):
        self.cfg, self.p, self.run = cfg, p, run
        self.space = p["space"]
        self.points, self.rule = draw(self.space, p["budget"], p["sampler_seed"])
        # Every run of the select stage: {"point", "point_id", "phase", "seed", "record"}.
        self.entries: list[dict] = []
        self.distinct: list[dict] = []   # the points tried, in the order first tried
        self.candidates = {k: list(v) for k, v in self.space.items()}  # as the edge rule extends them
        self.extended: dict[str, list] = {k: [] for k in self.space}
        self.stuck: set[tuple[str, str]] = set()  # edges whose extension failed or was refused
        self.leftover = 0
        self.total = len(self.points) + p["reserve"] + p["retest"] * p["retest_seeds"] + len(p["seeds"])

    # --- running ---
    def _say(self, text: str) -> None:
        print(f"[apbench] protocol {self.p['name']}: {text}", flush=True)

    def _run(self, point: dict, seed: int, phase: str, point_id: int) -> dict:
        c = stage_config(self.cfg, self.p["name"], "select", point, seed, trainval=False)
        search = {"budget": self.p["budget"], "rule": self.rule, "point_index": point_id, "phase": phase}
        return self.run(c, hparams={"search": search})

    def _point_id(self, point: dict) -> int:
        if point not in self.distinct:
            self.distinct.append(point)
        return self.distinct.index(point)

    def _add(self, point: dict, seed: int, phase: str, what: str) -> dict:
        """Run one select-stage run and keep it; the caller looks at ``_busy`` of the result."""
        pid = self._point_id(point)
        self._say(f"{what} (cell run {len(self.entries) + 1} of {self.total}): {point}"
                  + (f", seed {seed}" if seed != self.p["select_seed"] else ""))
        rec = self._run(point, seed, phase, pid)
        self.entries.append({"point": point, "point_id": pid, "phase": phase, "seed": seed, "record": rec})
        return rec

    def _batch(self, jobs: list[tuple[dict, int, str, str]]) -> bool:
        """Run independent runs; look once more at those another process held (it may have finished
        them while this one trained its own). False when some are still busy: the choice is then left
        to the process that finishes them (choosing from the rest would shrink this cell's budget)."""
        first = len(self.entries)
        for job in jobs:
            self._add(*job)
        for e in [e for e in self.entries[first:] if _busy(e["record"])]:
            e["record"] = self._run(e["point"], e["seed"], e["phase"], e["point_id"])
        return not any(_busy(e["record"]) for e in self.entries[first:])

    def _leave(self) -> list[dict]:
        busy = sum(_busy(e["record"]) for e in self.entries)
        self._say(f"{busy} of its select runs are being trained by another process; the choice and the final runs "
                  "are left to the job that finishes them (relaunch this one later to have it finish the cell)")
        return [e["record"] for e in self.entries]

    # --- scoring ---
    def _firsts(self) -> list[dict]:
        """Each distinct point's run at the select seed (the one the edge rule and the ranking read)."""
        seen, out = set(), []
        for e in self.entries:
            if e["seed"] == self.p["select_seed"] and e["point_id"] not in seen:
                seen.add(e["point_id"])
                out.append(e)
        return out

    def _ranked(self) -> list[dict]:
        firsts = self._firsts()
        order = ranking([score_of(e["record"]) for e in firsts], [cost_of(e["record"]) for e in firsts])
        return [firsts[i] for i in order]

    # --- the phases ---
    def drawn(self) -> bool:
        n = len(self.points)
        return self._batch([(pt, self.p["select_seed"], "select", f"select run {i + 1} of {n}")
                            for i, pt in enumerate(self.points)])

    def _extension_of(self, best: dict):
        """The edge rule's next run for ``best``: (point, key, side, value), or None when no key of it
        is on an edge that can move. Of several edge keys, the one extended least often so far goes
        first (then space order), so one key that keeps moving cannot starve another."""
        options = [(k, s) for k, s in edges(self.candidates, self.p["bounds"], best["point"]) if (k, s) not in self.stuck]
        for key, side in sorted(options, key=lambda ks: (len(self.extended[ks[0]]), list(self.space).index(ks[0]))):
            low, high = self.p["bounds"].get(key, (None, None))
            value = extension(self.candidates[key], side, low if side == "low" else high)
            if value is None:
                continue
            return {**best["point"], key: value}, key, side, value
        return None

    def reserve(self) -> bool:
        r, spent = self.p["reserve"], 0
        while spent < r:
            ranked = self._ranked()
            ext = self._extension_of(ranked[0]) if ranked else None
            if ext is not None:
                point, key, side, value = ext
                self.candidates[key].append(value)
                what = f"reserve run {spent + 1} of {r}, edge rule: {key} past its {side} edge -> {value:g}"
                try:
                    rec = self._add(point, self.p["select_seed"], "extension", what)
                except ConfigError as e:  # the value is refused before training (e.g. out of the method's range)
                    self.candidates[key].remove(value)
                    self.stuck.add((key, side))
                    self._say(f"the edge rule's next {key}={value:g} is refused ({e}); that edge stays unresolved")
                    continue  # nothing trained: the run is not spent
                spent += 1
                if _busy(rec):
                    return False
                if rec.get("status") != "ok":  # a failed run says nothing about the edge
                    self.candidates[key].remove(value)
                    self.stuck.add((key, side))
                else:
                    self.extended[key].append(value)
                continue
            taken = [pt for pt in self.distinct if all(pt.get(k) in v for k, v in self.space.items())]
            nxt = next_points(self.space, self.rule, taken, 1, self.p["sampler_seed"])
            if not nxt:  # the whole grid was run: the rest of R goes to more seeds of the top points
                self.leftover = r - spent
                self._say(f"no edge to move and no point of the space left: the other {self.leftover} reserve "
                          "run(s) retrain its top points with further seeds")
                return True
            spent += 1
            if _busy(self._add(nxt[0], self.p["select_seed"], "reserve", f"reserve run {spent} of {r}, next point")):
                return False
        return True

    def retest_pool(self) -> list[dict]:
        k = self.p["retest"]
        size = max(k, 2) if self.leftover else k
        return [e for e in self._ranked()][:size]

    def retest(self) -> bool:
        pool = self.retest_pool()
        runs = self.p["retest"] * self.p["retest_seeds"] + self.leftover
        if not pool or not runs:
            return True
        jobs, rnd = [], 1
        while len(jobs) < runs:
            for e in pool:
                if len(jobs) < runs:
                    jobs.append((e["point"], self.p["select_seed"] + rnd, "retest",
                                 f"retest run {len(jobs) + 1} of {runs}"))
            rnd += 1
        return self._batch(jobs)

    def choose(self) -> tuple[dict, dict] | None:
        """``(chosen entry, its score)``: among the retested points by the mean over their seeds, else
        the best single run; None when every run failed."""
        pool = self.retest_pool() if any(e["phase"] == "retest" for e in self.entries) else self._ranked()[:1]
        if not pool:
            return None
        means = [mean_score([score_of(e["record"]) for e in self.entries if e["point_id"] == first["point_id"]])
                 for first in pool]
        best = choose(means, [cost_of(e["record"]) for e in pool])
        return (pool[best], means[best]) if best is not None else None

    # --- what the final runs record ---
    def edge_status(self, chosen: dict) -> dict:
        """Per ordered key: its candidates as extended, the values the edge rule added, the chosen value
        and ``inside`` | ``resolved`` | ``natural bound`` | ``edge unresolved``."""
        flagged = dict(edges(self.candidates, self.p["bounds"], chosen))
        out = {}
        for key, values in self.candidates.items():
            if not ordered(self.space[key]):
                continue
            v, nums = chosen.get(key), [float(x) for x in values]
            at_end = v is not None and float(v) in (min(nums), max(nums))
            status = ("edge unresolved" if key in flagged else "natural bound" if at_end
                      else "resolved" if self.extended[key] else "inside")
            out[key] = {"candidates": sorted(values), "extended": self.extended[key], "chosen": v, "status": status}
        return out

    def selection(self, chosen: dict, score: dict) -> dict:
        p = self.p
        per_run = [{**e["point"], "val_top1": (score_of(e["record"]) or {}).get("val_top1"),
                    "val_loss": (score_of(e["record"]) or {}).get("val_loss"), "run_id": e["record"].get("run_id"),
                    "phase": e["phase"], "seed": e["seed"]} for e in self.entries]
        flags = edge_flags(self.candidates, chosen["point"], p["bounds"])
        retested = [{**first["point"], **(mean_score([score_of(e["record"]) for e in self.entries
                                                      if e["point_id"] == first["point_id"]]) or {}),
                     "run_ids": [e["record"].get("run_id") for e in self.entries if e["point_id"] == first["point_id"]]}
                    for first in (self.retest_pool() if any(e["phase"] == "retest" for e in self.entries) else [])]
        return {
            "space": self.space, "budget": p["budget"], "rule": self.rule, "points": self.points,
            "select_seed": p["select_seed"], "reserve": p["reserve"],
            "retest": {"points": p["retest"], "seeds": p["retest_seeds"]},
            "bounds": {k: list(v) for k, v in p["bounds"].items()},
            "chosen": chosen["point"], "chosen_index": next(i for i, e in enumerate(self.entries) if e is chosen), "chosen_score": score,
            "val_top1": per_run,
            "val_loss": [{**e["point"], "val_loss": r["val_loss"], "run_id": r["run_id"]}
                         for e, r in zip(self.entries, per_run)],
            "retested": retested, "edges": self.edge_status(chosen["point"]), "edge_flags": flags,
            "compute": _compute([e["record"] for e in self.entries]),
        }


def run_protocol(cfg: DictConfig, run=None) -> list[dict]:
    """Run the protocol of ``cfg`` for its cell; returns every record (select stage first, then final)."""
    if run is None:
        from .run import run
    p = resolve(cfg)
    if p["space"] is None:
        if p["name"] == cfg.protocol.name:
            return [run(cfg)]  # fixed: the config as given, so its run id is the one `apbench run` always had
        return [run(stage_config(cfg, p["name"], "final", {}, cfg.seed, trainval=None))]

    for note in p["notes"]:
        print(f"[apbench] protocol {p['name']}: {note}")
    cell = CellSearch(cfg, p, run)
    check_before_any_run(cfg, p, cell.points)
    if not (cell.drawn() and cell.reserve() and cell.retest()):
        return cell._leave()
    records = [e["record"] for e in cell.entries]
    picked = cell.choose()
    if picked is None:
        print(f"[apbench] protocol {p['name']}: every select run failed; no final runs")
        return records
    chosen, score = picked
    selected = cell.selection(chosen, score)
    flags = selected["edge_flags"]
    retested = f", mean of {score['n']} seeds" if score.get("n", 1) > 1 else ""
    print(f"[apbench] protocol {p['name']}: chose {chosen['point']} (val {score['val_top1']:.2f}{retested}) from "
          f"{len(cell.entries)} select-stage runs ({cell.rule}, budget {p['budget']} + reserve {p['reserve']} + "
          f"retest {p['retest']}" + (f" x {p['retest_seeds']} seeds)" if p["retest"] else ")")
          + (f"; edge unresolved: {', '.join(flags)}" if flags else ""))
    selection = {"selected_from": selected, "edge_flags": flags}
    start = len(cell.entries)
    for k, seed in enumerate(p["seeds"]):
        print(f"[apbench] protocol {p['name']}: final run {k + 1} of {len(p['seeds'])} (cell run "
              f"{start + k + 1} of {cell.total}): seed {seed}", flush=True)
        c = stage_config(cfg, p["name"], "final", chosen["point"], seed, trainval=p["final_trainval"])
        records.append(_also_reached_by(run(c, hparams=selection), c, selected))
    return records


def _search_key(s: dict) -> tuple:
    """What makes two selections the same search. A record from before the edge rule has no reserve,
    retest or bounds: that is reserve 0 and no retest, and without a reserve the bounds decide nothing
    (they only stop an extension), so such a search equals today's ``reserve=0, retest=0`` one."""
    reserve = s.get("reserve") or 0
    retest = s.get("retest") if isinstance(s.get("retest"), dict) else {}
    retested = (retest.get("points"), retest.get("seeds")) if retest.get("points") else None
    return (s.get("space"), s.get("grid"), s.get("budget"), s.get("rule"), s.get("select_seed"), s.get("points"),
            reserve, retested, s.get("bounds") if reserve else None)


def _same_search(a: dict, b: dict) -> bool:
    return _search_key(a) == _search_key(b)


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
