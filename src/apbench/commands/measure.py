"""``apbench measure [OVERRIDES...]``: the efficiency of every cell of a sweep, measured back to back.

Run records carry their own efficiency figures, but each was measured whenever that run happened: on
a shared machine their timings are not comparable. This command builds every distinct cell of
``apbench run -m OVERRIDES`` (random weights, nothing trained or downloaded) and measures them one
after another in one process: trainable parameters, training memory and FLOPs with the functions
the records use (``engine.efficiency``), and every timing from ``cell_costs.cell_costs`` passes repeated
``--repeat`` times (median and min-max in the table): the full-model train step and inference, and
the train step as the run takes it (the suffix only, where the prefix cache applies). Every timing
uses the cell's training batch (``trainer.batch_size``), the batch the records' own figures use.
Ratios are against a baseline cell of the same pass (default: the linear probe, else the first
cell). The table files are rewritten after every cell, so an interrupted pass keeps what it measured.

    apbench measure experiment=cpu_lite0_fmnist1k method=linear_probe,full_ft --baseline full_ft
    apbench measure --records results/cpu-lite0-fmnist1k/runs --out results/cpu-lite0-fmnist1k
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config_dir import CONF_DIR
from . import OneLineHelp

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="apbench measure", description=__doc__, formatter_class=OneLineHelp)
    ap.add_argument("overrides", nargs="*", metavar="OVERRIDES", help="Hydra overrides of the sweep, as for `apbench run -m`")
    ap.add_argument("--records", type=Path, default=None, metavar="DIR",
                    help="measure the cells of the final ok records under DIR instead of a sweep")
    ap.add_argument("--baseline", default=None, metavar="LABEL",
                    help="method label the ratios divide by (default: linear_probe, else the first cell; '' for none)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before each timing (default 2)")
    ap.add_argument("--iters", type=int, default=5, help="timed steps per timing (default 5)")
    ap.add_argument("--repeat", type=int, default=3, help="timing passes per cell, median and min-max shown (default 3)")
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu (default: the config's device)")
    ap.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="also write efficiency-measured-<model>.md/csv/tex here, rewritten after every cell")
    return ap


def main(argv: list[str]) -> int:
    ap = parser()
    a = ap.parse_args([x for x in argv if x not in ("-m", "--multirun")])
    if a.warmup < 0 or a.iters < 1 or a.repeat < 1:
        ap.error("--iters and --repeat must be >= 1, --warmup >= 0")
    # After the arguments: --help and a usage error need no torch or pandas.
    from ..back_to_back import choose_baseline, distinct_cells, jobs_from_records, machine_description, measure_cells
    from ..back_to_back import heading, table
    from ..results.rows import label_order
    from ..results.tables import to_markdown, write_table
    from ..sweep import sweep_jobs

    if a.out is not None and a.out.exists() and not a.out.is_dir():
        print(f"apbench measure: --out {a.out} is an existing file, not a folder; name a folder for the tables",
              file=sys.stderr)
        return 2
    if a.records is not None:
        if a.overrides:
            ap.error("give either OVERRIDES or --records, not both")
        if not a.records.is_dir():
            print(f"apbench measure: --records {a.records} is not a directory; give the folder the runs wrote to",
                  file=sys.stderr)
            return 2
        bad: list = []
        jobs = jobs_from_records(a.records, bad)
        for _, reason in bad:
            print(f"record skipped: {reason}", file=sys.stderr)
        if not jobs:
            print(f"apbench measure: no final ok record with a config under {a.records}", file=sys.stderr)
            return 2
    else:
        jobs = sweep_jobs(a.overrides, str(CONF_DIR))
    cells = distinct_cells(jobs)
    labels = list(cells["label"]) if len(cells) else []
    baseline = choose_baseline(labels, a.baseline)
    if baseline is not None and baseline not in labels:  # said before minutes of measuring, not after
        print(f"apbench measure: --baseline {baseline!r} is not among the cells: {', '.join(label_order(labels))}"
              " (or --baseline '' for no ratio columns)", file=sys.stderr)
        return 2

    def write(df) -> None:
        if a.out is None:
            return
        a.out.mkdir(parents=True, exist_ok=True)
        for model, part in df.groupby("model"):
            write_table(table(part, baseline if baseline in set(part["label"]) else None), a.out,
                        f"efficiency-measured-{model}")

    df = measure_cells(jobs, a.device, a.warmup, a.iters, a.repeat,
                       progress=lambda s: print(s, file=sys.stderr), on_row=write, cells=cells)
    print(machine_description())
    for model, part in df.groupby("model"):
        here = baseline if baseline in set(part["label"]) else None
        print(f"\n## {heading(model, part)}\n")
        print(to_markdown(table(part, here)))
    return 1 if df["error"].astype(bool).any() else 0
