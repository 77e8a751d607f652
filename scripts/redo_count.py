"""Which runs a relaunch of a protocol sweep would train, and which it finds done (by run id).

    PYTHONPATH=src python scripts/redo_count.py OVERRIDES...     # the overrides of `apbench run -m`

Every job is composed as `apbench run -m` composes it (apbench.sweep) and its protocol is walked by
`apbench.protocol.run_protocol` itself, with the training call replaced: a run whose ok record is in
``paths.results_dir`` under its run id is reused, any other is counted as one that would train (nothing
is trained or written). A new run's result is not known before it runs; the walk lets a new point score
below every point before it and a retest seed score as its point's first run, so no choice moves and
the final runs already done are reused: the fewest runs that train. The select-stage runs are the
same whatever they score (N + R + retests per cell); each cell whose choice moves adds its final runs,
counted as the most.

Time: each new run is costed at the wall time of the done runs of its cell (the same layer for AP),
the fastest (the machine least loaded) and the median; summed, one run after another.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _done(cfg, rid: str) -> dict | None:
    path = Path(cfg.paths.results_dir) / rid / "record.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("status") == "ok" else None


class Walk:
    """The stand-in for apbench.run.run in one walk of one job."""

    def __init__(self):
        self.reused, self.new = [], []     # (stage, phase[, seconds fastest, seconds median])
        self.first_val: dict[str, float] = {}
        self.cell_times: dict[tuple, list[float]] = {}

    def _times(self, cfg, stage: str) -> list[float]:
        key = (stage, json.dumps(cfg.method.get("layers"), default=str))
        return self.cell_times.get(key) or self.cell_times.get((stage, None)) or [float("nan")]

    def __call__(self, cfg, hparams=None):
        from omegaconf import OmegaConf

        from apbench.run import run_id_of

        rid = run_id_of(cfg)
        stage = cfg.protocol.stage
        phase = ((hparams or {}).get("search") or {}).get("phase", "final" if stage == "final" else "select")
        point = json.dumps({k: OmegaConf.select(cfg, k) for k in ("trainer.lr", "trainer.head_lr", "trainer.weight_decay",
                                                                  "method.layers")}, default=str)
        rec = _done(cfg, rid)
        if rec is not None:
            for key in ((stage, json.dumps(cfg.method.get("layers"), default=str)), (stage, None)):
                self.cell_times.setdefault(key, []).append(rec.get("wall_time_s") or float("nan"))
            self.reused.append((stage, phase))
            if stage == "select" and phase in ("select", "extension", "reserve"):
                self.first_val.setdefault(point, (rec.get("metrics") or {}).get("val_top1"))
            if stage == "final":  # as the protocol would see it, without writing the record
                rec = rec | {"hparams": (rec.get("hparams") or {}) | dict(hparams or {})}
            return rec
        times = self._times(cfg, stage)
        self.new.append((stage, phase, min(times), statistics.median(times)))
        if stage == "final":
            return {"status": "ok", "run_id": rid, "stage": stage, "hparams": dict(hparams or {}), "metrics": {}}
        known = self.first_val.get(point)
        val = known if known is not None else -1.0  # a new point loses; a retest seed scores as its first run
        if known is None:
            self.first_val[point] = val
        return {"status": "ok", "run_id": rid, "stage": stage, "layers": [], "params": {},
                "metrics": {"val_top1": val, "val_loss": 1.0}}


def _minutes(rows, i):
    return sum(r[i] for r in rows) / 60


def main(argv: list[str]) -> int:
    import contextlib
    import io

    from apbench import protocol
    from apbench.config_dir import CONF_DIR
    from apbench.sweep import sweep_jobs

    jobs = sweep_jobs(argv, str(CONF_DIR))
    walks, finals = [], []  # finals: (count, fastest s, median s) of the final runs a moved choice retrains
    print(f"redo_count: {len(jobs)} jobs of `apbench run -m {' '.join(argv)}`")
    for job in jobs:
        walk = Walk()
        with contextlib.redirect_stdout(io.StringIO()):  # the protocol's own progress lines
            protocol.run_protocol(job.composed, run=walk)
        walks.append(walk)
        phases = {}
        for stage, phase, *_ in walk.new:
            phases[phase] = phases.get(phase, 0) + 1
        times = walk.cell_times.get(("final", None)) or [float("nan")]
        seeds = sum(1 for stage, _ in walk.reused if stage == "final") + sum(1 for r in walk.new if r[0] == "final")
        if not walk.new:  # nothing new to score: the choice cannot move
            seeds = 0
        finals.append((seeds, seeds * min(times), seeds * statistics.median(times)))
        moves = (f"; if its choice moves, {seeds} final runs more ({finals[-1][1] / 60:.0f}-{finals[-1][2] / 60:.0f} min)"
                 if seeds else "")
        print(f"  #{job.num} {' '.join(job.overrides)}: {len(walk.reused)} done, {len(walk.new)} to train "
              f"({', '.join(f'{n} {p}' for p, n in phases.items()) or 'none'}; {_minutes(walk.new, 2):.0f}-"
              f"{_minutes(walk.new, 3):.0f} min){moves}")
    new = [r for w in walks for r in w.new]
    select = sum(1 for r in new if r[0] == "select")
    print(f"done and reused by run id: {sum(len(w.reused) for w in walks)} runs; to train: {len(new)} ({select} "
          f"select-stage, {len(new) - select} final), {_minutes(new, 2):.0f} min at the fastest done run of each "
          f"cell, {_minutes(new, 3):.0f} min at the median, in sequence; each cell whose choice moves adds its final "
          f"runs: at most {sum(f[0] for f in finals)} more, {sum(f[1] for f in finals) / 60:.0f}-"
          f"{sum(f[2] for f in finals) / 60:.0f} min")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main(sys.argv[1:]))
