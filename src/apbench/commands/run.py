"""``apbench run [HYDRA OVERRIDES...]``: train and evaluate one cell; ``-m`` runs a multirun sweep.

Each Hydra job runs its cell's protocol (:func:`apbench.protocol.run_protocol`); a sweep goes on past a
refused or failed cell and its exit code says what happened (``EXIT_CODES``). ``--help`` is Hydra's,
with the template in conf/config.yaml.
"""
from __future__ import annotations

import os
import sys

from ..config_dir import CONF_DIR
from . import hydra_help, wants_help


def _summary(rec: dict) -> str:
    from ..results.frame import model_label  # a reshaped architecture is named by its model config
    m = rec.get("metrics") or {}
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    stage = " (select)" if rec.get("stage") == "select" else ""
    return (f"[apbench] {rec['run_id']} {rec['status']}{stage}: {rec['dataset']} {model_label(rec)} {rec['method']} "
            f"layers={','.join(rec.get('layers') or []) or '-'} seed={rec['seed']} "
            f"val={fmt(m.get('val_top1'))} test={fmt(m.get('test_top1'))}")


def shard_of(env: str | None) -> tuple[int, int] | None:
    """``APBENCH_SHARD=i/n`` as ``(i, n)``: this process runs only jobs with ``num % n == i`` -- n
    processes, one per GPU (each with its own ``CUDA_VISIBLE_DEVICES``), then share one sweep without
    overlap. None when unset; a ValueError with the message to print when malformed."""
    if not env:
        return None
    try:
        i, n = (int(x) for x in env.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise ValueError(f"apbench: APBENCH_SHARD={env!r} must be i/n with 0 <= i < n, e.g. 0/4")
    return i, n


def _in_shard(job_num: int) -> bool:
    shard = shard_of(os.environ.get("APBENCH_SHARD"))
    return shard is None or job_num % shard[1] == shard[0]


EXIT_CODES = """exit codes of `apbench run`:
  0  every run is ok (or was skipped: an ok record exists)
  1  a run failed (its record says failed), or its record could not be written
  2  bad input: refused before any work, no record (a sweep runs its other cells first)
  3  out of memory (the record says oom; no other failure)"""


def _exit_code(statuses: list[str]) -> int:
    bad = [s for s in statuses if s in ("failed", "oom")]
    return 0 if not bad else 3 if all(s == "oom" for s in bad) else 1


def hydra_run(overrides: list[str]) -> int:
    """Run one cell, or a sweep with ``-m``. A sweep goes on past a refused cell (bad input, invalid
    config, a cell that does not compose: no record) and ends with exit 2 listing them, so a script
    notices that cells are missing; else with 1 (or 3) when a run's record says failed (oom).
    Cells run by an out-of-process launcher (submitit, SLURM) report in their own logs instead."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ..hydra_guard import guarded, log_folder_errors

    try:  # checked before Hydra starts: a malformed shard would otherwise end the sweep without a word
        shard_of(os.environ.get("APBENCH_SHARD"))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    refused: list[str] = []
    not_composed: list[tuple[list[str], str]] = []
    failed: list[str] = []
    statuses: list[str] = []
    fixed_methods: set[str] = set()  # methods run once at their default point: not a comparison
    started = []

    @hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
    def task(cfg):
        # Imported here, not above: a mistyped override is then reported by Hydra in about a second,
        # before torch and timm load.
        from ..errors import ConfigError, InputError
        from ..protocol import run_protocol
        from ..run import RecordWriteError

        started.append(True)
        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        if multirun and not _in_shard(hc.job.num):
            return "other-shard"
        try:
            recs = run_protocol(cfg)
        except (ConfigError, RecordWriteError) as e:
            what = ("cannot write results" if isinstance(e, RecordWriteError)
                    else "bad input" if isinstance(e, InputError) else "invalid configuration")
            print(f"apbench: {what}: {e.strerror if isinstance(e, OSError) else e}", file=sys.stderr)
            if multirun:  # the other cells of the sweep still run
                refused.append(f"#{hc.job.num} {' '.join(hc.overrides.task)}: {what}")
                return None
            sys.exit(1 if isinstance(e, RecordWriteError) else 2)
        for rec in recs:
            print(_summary(rec))
            statuses.append(rec["status"])
            if rec.get("protocol") == "fixed" and rec["status"] == "ok":
                fixed_methods.add(str(rec.get("method")))
            if rec["status"] != "ok" and multirun:
                failed.append(f"#{hc.job.num} {' '.join(hc.overrides.task)}: {rec['status']} ({rec['run_id']})")
        return recs[-1].get("status")

    sys.argv = ["apbench run", *overrides]
    try:
        with guarded(not_composed), log_folder_errors(started):
            task()
    except SystemExit as e:
        if e.code == 1 and not started:  # Hydra refused the command line (an unknown option or key)
            return 2
        return e.code if isinstance(e.code, int) else 1
    if len(fixed_methods) > 1:
        from ..results.rows import UNTUNED_NOTE  # a constant: no pandas
        print(f"[apbench] note: {', '.join(sorted(fixed_methods))}: {UNTUNED_NOTE}")
    refused += [f"{' '.join(ov)}: does not compose ({why[:200]})" for ov, why in not_composed]
    if refused:
        print(f"apbench: {len(refused)} cell(s) of the sweep were refused and left no record "
              "(the reasons are printed above; fix them and rerun the sweep: finished cells are skipped):\n  "
              + "\n  ".join(refused), file=sys.stderr)
        return 2
    code = _exit_code(statuses)
    if code and failed:
        print(f"apbench: {len(failed)} run(s) did not end ok (their records say why; `apbench results DIR` "
              "lists them, and a rerun of the same command redoes them):\n  " + "\n  ".join(failed), file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    if wants_help(argv):
        print(hydra_help(
            "apbench run [-m] [GROUP=OPTION | KEY=VALUE ...]",
            "Train and evaluate one cell (dataset, model, method, layers, seed) and write its record;\n"
            "with -m, every cell of a sweep. A protocol with a budget (protocol=vtab1k) runs the cell's\n"
            "select runs on val and its final runs on test.",
            [("seed", "the run's seed (default 0)"), ("device", "auto | cuda | cpu"),
             ("force", "true: run again even when an ok record exists"),
             ("+suite=NAME", "every dataset of conf/suite/NAME.yaml (with -m)")],
            EXIT_CODES, skip=("analysis",)))
        return 0
    return hydra_run(argv)
