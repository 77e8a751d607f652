"""The ``apbench`` command.

    apbench run [HYDRA OVERRIDES...]       train and evaluate one cell (-m for a multirun sweep)
    apbench plan [OVERRIDES...] [--dry-run] jobs, runs and estimated time of `apbench run -m OVERRIDES`
    apbench measure [OVERRIDES...]         efficiency of every cell of that sweep, measured back to back
    apbench analyze [OVERRIDES...]         CKA, attention distance, per-point probes, ERF of a frozen backbone
    apbench layers MODEL [--image-size N]  list a backbone's addressable points with their shapes
    apbench results DIR [--out OUT]        tables and plots from the records under DIR
    apbench methods                        the registered methods and the families they apply to
    apbench data verify|prepare|list ...   check a data root against the manifest, prepare data
"""
from __future__ import annotations

import os
import signal
import sys

from .config_dir import CONF_DIR  # noqa: F401  (also re-exported: `from apbench.cli import CONF_DIR`)


def _summary(rec: dict) -> str:
    from .results.frame import model_label  # a reshaped architecture is named by its model config
    m = rec.get("metrics") or {}
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    stage = " (select)" if rec.get("stage") == "select" else ""
    return (f"[apbench] {rec['run_id']} {rec['status']}{stage}: {rec['dataset']} {model_label(rec)} {rec['method']} "
            f"layers={','.join(rec.get('layers') or []) or '-'} seed={rec['seed']} "
            f"val={fmt(m.get('val_top1'))} test={fmt(m.get('test_top1'))}")


def _in_shard(job_num: int) -> bool:
    """``APBENCH_SHARD=i/n``: this process runs only jobs with ``num % n == i`` -- n processes, one
    per GPU (each with its own ``CUDA_VISIBLE_DEVICES``), then share one sweep without overlap."""
    shard = os.environ.get("APBENCH_SHARD")
    if not shard:
        return True
    try:
        i, n = (int(x) for x in shard.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise SystemExit(f"apbench: APBENCH_SHARD={shard!r} must be i/n with 0 <= i < n, e.g. 0/4") from None
    return job_num % n == i


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

    from .hydra_guard import guarded

    refused: list[str] = []
    not_composed: list[tuple[list[str], str]] = []
    failed: list[str] = []
    statuses: list[str] = []
    started = []

    @hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
    def task(cfg):
        # Imported here, not above: a mistyped override is then reported by Hydra in about a second,
        # before torch and timm load.
        from .protocol import run_protocol
        from .run import RecordWriteError
        from .validate import ConfigError, InputError

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
            if rec["status"] != "ok" and multirun:
                failed.append(f"#{hc.job.num} {' '.join(hc.overrides.task)}: {rec['status']} ({rec['run_id']})")
        return recs[-1].get("status")

    sys.argv = ["apbench run", *overrides]
    try:
        with guarded(not_composed):
            task()
    except SystemExit as e:
        if e.code == 1 and not started:  # Hydra refused the command line (an unknown option or key)
            return 2
        return e.code if isinstance(e.code, int) else 1
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


def layers_cmd(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="apbench layers", description="List the addressable points of a backbone.")
    ap.add_argument("model", help="a model config name (conf/model/) or a timm model name")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--modules", action="store_true", help="also list every module path")
    a = ap.parse_args(argv)
    if a.image_size is not None and a.image_size < 1:
        ap.error(f"--image-size {a.image_size} must be a positive number of pixels, e.g. --image-size 224")

    import timm  # after the arguments are checked: a usage error needs no torch
    import torch
    from omegaconf import OmegaConf

    from .models.layers import LayerSpecError, format_points, list_points

    cfg_file = CONF_DIR / "model" / f"{a.model}.yaml"
    kwargs, name, size = {}, a.model, None
    if cfg_file.is_file():
        mc = OmegaConf.to_container(OmegaConf.load(cfg_file), resolve=True)
        name, kwargs = mc["name"], mc.get("kwargs") or {}
        size = (mc.get("preprocessing") or {}).get("image_size")
    elif a.model not in timm.list_models():
        configs = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
        print(f"apbench layers: {a.model!r} is neither a model config ({', '.join(configs)}) nor a timm model name",
              file=sys.stderr)
        return 2
    with torch.device("meta"):  # shapes without allocating weights, even for ViT-L
        model = timm.create_model(name, pretrained=False, **kwargs)
    size = a.image_size or size or model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    try:
        points = list_points(model, (3, size, size))
    except LayerSpecError as e:
        print(f"apbench layers: {e}", file=sys.stderr)
        return 2
    print(format_points(f"{a.model} ({name}, {size} px)", points))
    if a.modules:
        for path, mod in model.named_modules():
            if path:
                print(f"  {path}  ({type(mod).__name__})")
    return 0


def plan_cmd(argv: list[str]) -> int:
    from .plan import main as plan_main
    return plan_main(argv)


def measure_cmd(argv: list[str]) -> int:
    from .measure import main as measure_main
    return measure_main(argv)


def analyze_cmd(argv: list[str]) -> int:
    from .analysis.analyze import main as analyze_main
    return analyze_main(argv)


def methods_cmd(argv: list[str]) -> int:
    from .methods import METHODS

    for info in sorted(METHODS.values(), key=lambda i: i.name):
        print(f"{info.name:<16} {', '.join(info.families):<40} {info.summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "run" and hasattr(signal, "SIGPIPE"):
        # `apbench layers MODEL | head` ends quietly, as a Unix tool should. Not for runs: training
        # must not die with its reader, it reports write errors instead.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    commands = {"run": hydra_run, "plan": plan_cmd, "measure": measure_cmd, "layers": layers_cmd,
                "methods": methods_cmd, "analyze": analyze_cmd}
    from .data.cli import main as data_main
    from .results.report import main as results_main
    commands.update(results=results_main, data=data_main)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in commands:
        print(f"apbench: unknown command {cmd!r}; commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    return int(commands[cmd](rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
