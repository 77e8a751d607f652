"""``apbench plan [OVERRIDES...]``: the jobs and runs ``apbench run -m OVERRIDES`` would launch, and
roughly how long they take on this machine (:mod:`apbench.sweep`). Nothing is trained."""
from __future__ import annotations

import argparse

from ..config_dir import CONF_DIR
from . import OneLineHelp
from ..sweep import estimate, sweep_jobs


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="apbench plan", description=__doc__, formatter_class=OneLineHelp,
                                 epilog="OVERRIDES are those of `apbench run -m`, e.g. experiment=layer_sweep_cnn")
    ap.add_argument("overrides", nargs="*", metavar="OVERRIDES", help="Hydra overrides, as for `apbench run -m`")
    ap.add_argument("--dry-run", action="store_true", help="list every job with its overrides and runs")
    ap.add_argument("--measure", choices=("first", "each", "none"), default="first",
                    help="time the first cell (default), every distinct model/method/batch, or nothing")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per measurement (default 3)")
    ap.add_argument("--step-time", type=float, default=None, metavar="S", help="seconds per step, instead of measuring")
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu (default: the config's device)")
    ap.add_argument("--train-images", type=int, default=None, metavar="N",
                    help="train images per run for datasets whose size plan does not know")
    return ap


def main(argv: list[str]) -> int:
    ap = parser()
    a = ap.parse_args([x for x in argv if x not in ("-m", "--multirun")])
    jobs = sweep_jobs(a.overrides, str(CONF_DIR), a.train_images)
    notes = [] if a.measure == "none" and a.step_time is None else \
        estimate(jobs, a.measure, a.device, a.steps, a.step_time)

    runs = sum(j.runs for j in jobs)
    select = sum(j.select_runs for j in jobs)
    print(f"apbench plan: {len(jobs)} jobs, {runs} runs ({select} select + {runs - select} final)")
    by_protocol: dict[str, set[int]] = {}
    for j in jobs:
        by_protocol.setdefault(j.protocol, set()).add(j.select_runs if j.protocol != "fixed" else 1)
    for name, sizes in sorted(by_protocol.items()):
        mine = [j for j in jobs if j.protocol == name]
        if sizes == {1} and name == "fixed":
            print(f"  protocol fixed: {len(mine)} jobs, one run each")
            continue
        rules = ", ".join(f"{r} x {sum(1 for j in mine if j.rule == r)}" for r in sorted({j.rule for j in mine}))
        if len(sizes) == 1:
            j = mine[0]
            parts = f"{j.grid_size} drawn + {j.reserve} reserve + {j.retest} retest = " if j.reserve or j.retest else ""
            print(f"  protocol {name}: {len(mine)} jobs, {parts}{sizes.pop()} select runs for every job "
                  f"(equal budget; {rules})")
        else:
            small = sorted({f"{j.cfg.method.name} ({j.space_size} points)" for j in mine if j.select_runs < max(sizes)})
            print(f"  protocol {name}: {len(mine)} jobs, UNEQUAL select runs {sorted(sizes)}: budgets differ "
                  f"(spaces smaller than the budget: {', '.join(small)}; {rules})")
    for note in notes:
        print(f"  {note}")
    if a.dry_run:
        for j in jobs:
            t = "-" if j.seconds is None else _hours(j.seconds)
            print(f"  #{j.num:<4} runs={j.runs:<3} est={t:<9} {' '.join(j.overrides)}")
    known = [j.seconds for j in jobs if j.seconds is not None]
    if known:
        total = sum(known)
        print(f"  estimated training time: {_hours(total)} on one device of this kind, all runs in sequence "
              f"(an estimate: training steps, evaluation, prefix-cache builds and efficiency measures, not data "
              f"loading; divide by the devices used in parallel)")
        print(f"  longest job: {_hours(max(known))} (set the launcher's timeout_min above it, or rely on requeue)")
    unknown = len(jobs) - len(known)
    if unknown and notes:
        print(f"  not estimated: {unknown} jobs whose dataset size plan does not know (--train-images N)")
    return 0
