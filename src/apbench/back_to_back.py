"""The efficiency of every distinct cell of a sweep (or of records), measured back to back in one
process (``apbench measure``; see :mod:`apbench.commands.measure` for why and how)."""
from __future__ import annotations

import copy
import statistics

import pandas as pd
from omegaconf import OmegaConf, open_dict

from .cell_costs import build_cell, cell_costs, rate_key
from .sweep import Job

DEFAULT_BASELINE = "linear_probe"


def _layers_str(layers) -> str:
    if layers is None:
        return ""
    return "+".join(str(v) for v in layers) if isinstance(layers, (list, tuple)) else str(layers)


def jobs_from_records(root, bad: list | None = None) -> list[Job]:
    """One job per final ``ok`` record under ``root``, from the config the record stores. Records that
    cannot be read, are invalid (``results.record_check``) or whose config does not describe a cell are
    appended to ``bad`` as (path, reason) instead: named, never a traceback."""
    from .results.store import iter_records

    bad = [] if bad is None else bad
    jobs = []
    for r in iter_records(root, bad=bad):
        if not (r.get("status") == "ok" and r.get("stage") == "final" and r.get("config")):
            continue
        try:
            cfg = OmegaConf.create(r["config"])
            _describe(cfg), rate_key(cfg), int(_at_training_batch(cfg).trainer.batch_size)  # what measuring reads
        except Exception as e:  # noqa: BLE001  (OmegaConf, key and type errors alike: no usable config)
            bad.append((r["_path"], f"{r['_path']}: its config does not describe a cell ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:200] if str(e) else ''})"))
            continue
        jobs.append(Job(0, [], cfg))
    return jobs


def _describe(cfg) -> dict:
    from .results.frame import variant_of

    m = OmegaConf.to_container(cfg.method, resolve=True)
    return {"model": cfg.model.get("id", cfg.model.name), "method": m["name"], "head": m.get("head", "linear"),
            "variant": variant_of(m["name"], m), "layers_str": _layers_str(m.get("layers"))}


def distinct_cells(jobs: list[Job]) -> pd.DataFrame:
    """One row per distinct cell (same model/method/batch/cache setting) with its config and label,
    known before anything is measured."""
    from .results.frame import method_labels

    distinct = {}
    for job in jobs:
        distinct.setdefault(rate_key(job.cfg), job.cfg)
    cells = pd.DataFrame([_describe(cfg) | {"cfg": cfg} for cfg in distinct.values()])
    if len(cells):
        cells["label"] = method_labels(cells)
    return cells


def choose_baseline(labels: list[str], asked: str | None) -> str | None:
    """``asked`` ('' = none); by default the linear probe if present, else the first cell."""
    from .results.rows import label_order

    if asked is not None:
        return asked or None
    if not labels:
        return None
    return DEFAULT_BASELINE if DEFAULT_BASELINE in labels else label_order(labels)[0]


def _at_training_batch(cfg):
    """The cell's config with inference timed at the training batch, as the records time it."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.trainer.eval_batch_size = cfg.trainer.batch_size
    return cfg


def measure_cells(jobs: list[Job], device: str = "auto", warmup: int = 2, iters: int = 5, repeat: int = 3,
                  progress=print, on_row=None, cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per distinct cell; ``on_row(rows_so_far)`` after each. A cell that fails to build or
    measure gets a row with its error, and the pass goes on."""
    import torch

    from .engine.step import output_width
    from .engine.efficiency import count_params, flops, training_memory
    from .env import resolve_device

    cells = distinct_cells(jobs) if cells is None else cells
    rows = []
    for i, cell_row in enumerate(cells.itertuples(index=False), 1):
        cfg = _at_training_batch(cell_row.cfg)
        row = {k: getattr(cell_row, k) for k in ("model", "method", "head", "variant", "layers_str", "label")}
        t = cfg.trainer
        row |= {"batch": int(t.batch_size), "warmup": warmup, "iters": iters, "repeat": repeat, "error": ""}
        try:
            dev = resolve_device(device if device != "auto" else cfg.get("device", "auto"))
            cell = build_cell(cfg, dev)
            model, adapted, head, pre = cell
            adapted.eval()  # as the records measure: dropout off, frozen BN in eval
            params = count_params(model, head.prefixes, adapted.inserted)
            x = torch.randn(int(t.batch_size), *pre["input_size"], device=dev)
            y = torch.randint(output_width(model, x), (len(x),), device=dev)
            memory = training_memory(model, x, y, torch.nn.functional.cross_entropy, t.optimizer,
                                     t.amp if t.amp != "none" else "fp32")
            costs = [cell_costs(cfg, device, warmup=warmup, iters=iters, cell=cell) for _ in range(repeat)]
            step = [1e3 * c.step_s for c in costs]
            full = [1e3 * c.full_step_s for c in costs]
            infer = [1.0 / c.full_eval_s_per_image for c in costs]
            row |= {
                "trainable": params["trainable"], "trainable_no_head": params["trainable_no_head"],
                "memory_MB": memory["memory_bytes"] / 1e6,
                "full_step_ms": statistics.median(full), "full_step_min": min(full), "full_step_max": max(full),
                "step_ms": statistics.median(step), "step_min": min(step), "step_max": max(step),
                "cache_point": costs[0].cache_point or "-",
                "infer_img_s": statistics.median(infer), "infer_min": min(infer), "infer_max": max(infer),
                "gflops_infer": flops(model, pre["input_size"][1:], train=False) / 1e9,
            }
            del model, adapted, cell
            note = f"{row['memory_MB']:.1f} MB, step {row['step_ms']:.1f} ms ({row['step_min']:.1f}-{row['step_max']:.1f})"
        except Exception as e:  # one cell's failure must not lose the others' figures
            row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
            note = f"FAILED ({row['error']})"
        rows.append(row)
        progress(f"[apbench measure] {i}/{len(cells)} {row['label']}: {note}")
        if on_row is not None:
            on_row(pd.DataFrame(rows))
    return pd.DataFrame(rows)


def _spread(lo, hi) -> str:
    return "-" if pd.isna(lo) else f"{lo:.1f}-{hi:.1f}"


def table(df: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Rows in method-label order; ``x``-columns are baseline / method (above 1: cheaper than it).
    ``baseline`` None: no ratio columns; a label not among the rows: SystemExit naming them."""
    from .results.rows import label_order

    df = df.set_index("label")
    for col in ("trainable", "trainable_no_head", "memory_MB", "full_step_ms", "full_step_min", "full_step_max",
                "step_ms", "step_min", "step_max", "cache_point", "infer_img_s", "gflops_infer"):
        if col not in df:
            df[col] = float("nan")  # every cell failed
    out = pd.DataFrame({
        "trainable params": df["trainable"].astype("Int64"), "trainable w/o head": df["trainable_no_head"].astype("Int64"),
        "memory (MB)": df["memory_MB"].round(1), "batch": df["batch"],
        "train step, full model (ms)": df["full_step_ms"].round(1),
        "spread (ms)": [_spread(a, b) for a, b in zip(df["full_step_min"], df["full_step_max"])],
        "train step as run (ms)": df["step_ms"].round(1),
        "spread as run (ms)": [_spread(a, b) for a, b in zip(df["step_min"], df["step_max"])],
        "prefix cache from": df["cache_point"].fillna("-"),
        "infer (img/s)": df["infer_img_s"].round(1), "GFLOPs": df["gflops_infer"].round(3),
        "timings": [f"{r} x ({w} warm-up + {n} timed)" for w, n, r in zip(df["warmup"], df["iters"], df["repeat"])],
    })
    if df["error"].astype(bool).any():
        out["error"] = df["error"]
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


def heading(model: str, part: pd.DataFrame) -> str:
    batches = "/".join(str(b) for b in sorted(part["batch"].unique()))
    r, w, n = (int(part[c].iloc[0]) for c in ("repeat", "warmup", "iters"))
    return (f"{model}: measured back to back; every timing at the training batch ({batches}, as the records), "
            f"median of {r} repeats of {w} warm-up + {n} timed steps, spread = min-max of the repeats")
