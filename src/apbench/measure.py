"""``apbench measure [OVERRIDES...]``: the efficiency of every cell of a sweep, measured back to back.

Run records carry their own efficiency figures, but each was measured whenever that run happened: on
a shared machine their timings are not comparable. This command builds every distinct cell of
``apbench run -m OVERRIDES`` (random weights, nothing trained or downloaded) and measures them one
after another in one process: trainable parameters, training memory and FLOPs with the functions
the records use (``engine.efficiency``), and every timing from one ``plan.cell_costs`` pass: the
full-model train step and inference, and the train step as the run takes it (the suffix only, where
the prefix cache applies).
Ratios are against a baseline method measured in the same pass.

    apbench measure experiment=cpu_lite0_fmnist1k method=linear_probe,full_ft --baseline full_ft
    apbench measure --records results/cpu-lite0-fmnist1k/runs --out results/cpu-lite0-fmnist1k
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from . import plan


def _layers_str(layers) -> str:
    if layers is None:
        return ""
    return "+".join(str(v) for v in layers) if isinstance(layers, (list, tuple)) else str(layers)


def jobs_from_records(root) -> list[plan.Job]:
    """One job per final ``ok`` record under ``root``, from the config the record stores."""
    from .results.store import iter_records

    return [plan.Job(0, [], OmegaConf.create(r["config"])) for r in iter_records(root)
            if r.get("status") == "ok" and r.get("stage") == "final" and r.get("config")]


def measure_cells(jobs: list[plan.Job], device: str = "auto", warmup: int = 2, iters: int = 5,
                  progress=print) -> pd.DataFrame:
    """One row per distinct cell (same model/method/batch/cache setting measured once)."""
    import torch

    from .engine._step import output_width
    from .engine.efficiency import count_params, flops, training_memory
    from .env import resolve_device
    from .results.frame import variant_of

    distinct = {}
    for job in jobs:
        distinct.setdefault(plan.rate_key(job.cfg), job.cfg)
    rows = []
    for i, cfg in enumerate(distinct.values(), 1):
        m = OmegaConf.to_container(cfg.method, resolve=True)
        dev = resolve_device(device if device != "auto" else cfg.get("device", "auto"))
        t = cfg.trainer
        cell = plan.build_cell(cfg, dev)
        model, adapted, head, pre = cell
        adapted.eval()  # as the records measure: dropout off, frozen BN in eval
        # Structural figures with the records' functions; every timing from one cell_costs pass.
        params = count_params(model, head.prefixes, adapted.inserted)
        x = torch.randn(int(t.batch_size), *pre["input_size"], device=dev)
        y = torch.randint(output_width(model, x), (len(x),), device=dev)
        memory = training_memory(model, x, y, torch.nn.functional.cross_entropy, t.optimizer,
                                 t.amp if t.amp != "none" else "fp32")
        gflops = flops(model, pre["input_size"][1:], train=False) / 1e9
        cost = plan.cell_costs(cfg, device, warmup=warmup, iters=iters, cell=cell)
        rows.append({
            "model": cfg.model.get("id", cfg.model.name), "method": m["name"], "head": m.get("head", "linear"),
            "variant": variant_of(m["name"], m), "layers_str": _layers_str(m.get("layers")),
            "trainable": params["trainable"], "trainable_no_head": params["trainable_no_head"],
            "memory_MB": memory["memory_bytes"] / 1e6,
            "full_step_ms": 1e3 * cost.full_step_s,
            "step_ms": 1e3 * cost.step_s, "cache_point": cost.cache_point or "-",
            "infer_img_s": 1.0 / cost.full_eval_s_per_image, "gflops_infer": gflops,
        })
        progress(f"[apbench measure] {i}/{len(distinct)} {m['name']} "
                 f"layers={rows[-1]['layers_str'] or '-'} head={rows[-1]['head']}: "
                 f"{rows[-1]['memory_MB']:.1f} MB, step {rows[-1]['step_ms']:.1f} ms")
    return pd.DataFrame(rows)


def table(df: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Rows in method-label order; ``x``-columns are baseline / method (above 1: cheaper than it)."""
    from .results.frame import method_labels
    from .results.tables import label_order

    df = df.assign(label=method_labels(df)).set_index("label")
    out = pd.DataFrame({
        "trainable params": df["trainable"], "trainable w/o head": df["trainable_no_head"],
        "memory (MB)": df["memory_MB"].round(1),
        "train step, full model (ms)": df["full_step_ms"].round(1),
        "train step as run (ms)": df["step_ms"].round(1), "prefix cache from": df["cache_point"],
        "infer (img/s)": df["infer_img_s"].round(1), "GFLOPs": df["gflops_infer"].round(3),
    })
    if baseline is not None:
        if baseline not in df.index:
            raise SystemExit(f"apbench measure: baseline {baseline!r} is not among the cells: "
                             f"{', '.join(label_order(df.index))}")
        b = df.loc[baseline]
        out[f"memory x ({baseline})"] = (b["memory_MB"] / df["memory_MB"]).round(2)
        out[f"step x ({baseline})"] = (b["step_ms"] / df["step_ms"]).round(2)
    return out.reindex(label_order(out.index)).rename_axis("method")


def machine_description() -> str:
    import os

    import timm
    import torch
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} torch thread(s), "
            f"{os.cpu_count()} cores, load average {load:.1f} at the end")


def main(argv: list[str]) -> int:
    from .config_dir import CONF_DIR
    from .results.tables import to_markdown, write_table

    ap = argparse.ArgumentParser(prog="apbench measure", description=__doc__.split("\n\n")[0])
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--records", type=Path, default=None,
                    help="measure the cells of the final ok records under this folder instead of a sweep")
    ap.add_argument("--baseline", default="full_ft", help="method label the ratios divide by ('' for none)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=None, help="also write efficiency-measured-<model>.md/csv/tex here")
    a = ap.parse_args([x for x in argv if x not in ("-m", "--multirun")])
    if a.records is not None:
        if a.overrides:
            ap.error("give either OVERRIDES or --records, not both")
        jobs = jobs_from_records(a.records)
        if not jobs:
            print(f"apbench measure: no final ok record with a config under {a.records}", file=sys.stderr)
            return 2
    else:
        jobs = plan.sweep_jobs(a.overrides, str(CONF_DIR))
    df = measure_cells(jobs, a.device, a.warmup, a.iters, progress=lambda s: print(s, file=sys.stderr))
    print(machine_description())
    for model, part in df.groupby("model"):
        t = table(part, a.baseline or None)
        print(f"\n## {model}: measured back to back, {a.warmup} warm-up + {a.iters} timed steps each\n")
        print(to_markdown(t))
        if a.out is not None:
            a.out.mkdir(parents=True, exist_ok=True)
            write_table(t, a.out, f"efficiency-measured-{model}")
    return 0
