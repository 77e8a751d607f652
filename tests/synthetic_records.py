"""Small synthetic record folders in the records' real shape (selection protocol: select runs, then final
runs that name the select runs they chose from; per-image predictions; per-epoch histories), for the
results browser's tests and its load benchmark. Every number is a function of the arguments, so a test
can compute what a page must show."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from apbench.results.predictions import encode
from apbench.results.store import write_record

# (method, layers, head, accuracy on test, trainable params, memory bytes, step seconds, lr the selection picks)
METHODS = (
    ("linear_probe", [], "linear", 0.70, 5_130, 1.0e7, 0.010, 0.1),
    ("full_ft", [], "linear", 0.82, 2_000_000, 4.0e8, 0.400, 0.01),
    ("ap", [4], "linear", 0.76, 9_000, 3.0e7, 0.050, 0.1),
    ("ap", [8], "linear", 0.74, 7_000, 1.5e7, 0.030, 0.1),
    ("lora", [], "linear", 0.80, 60_000, 2.5e8, 0.200, 0.01),
    ("bitfit", [], "linear", 0.78, 20_000, 2.6e8, 0.250, 0.1),
    ("vp", ["input"], "linear", 0.66, 12_000, 3.0e8, 0.300, 0.1),
)
SPACE = [0.01, 0.1]


def rid(*parts) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:12]


def _predictions(n: int, acc: float, key: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(int(rid(key), 16) % 2**32)
    target = np.random.default_rng(7).integers(0, 10, n)  # one test set for every run
    pred = np.where(rng.random(n) < acc, target, (target + 1) % 10)
    return pred, target


def cell_records(dataset: str, group: str, model: str, method: str, layers, head: str, acc: float, params: int,
                 memory: float, step: float, lr: float, *, seeds=(0, 1, 2), n_test: int = 200,
                 predictions: bool = True, protocol: str = "vtab1k", epochs: int = 4) -> list[dict]:
    """The select runs (one per lr of SPACE) and final runs of one cell; the final runs chose ``lr``."""
    base = {"status": "ok", "protocol": protocol, "model": model, "dataset": dataset, "dataset_group": group,
            "method": method, "head": head, "layers": list(layers), "data": {"test": n_test},
            "params": {"trainable": params, "total": 5_000_000},
            "efficiency": {"memory_bytes": memory, "step_time_s": step},
            "env": {"device": "cpu", "torch": "2.x"}, "finished_at": "2026-01-01T00:00:00+00:00"}
    selects, points = [], []
    for i, point_lr in enumerate(SPACE):
        run_id = rid(dataset, model, method, layers, head, "select", point_lr)
        val = round(100 * acc + (2.0 if point_lr == lr else -3.0), 1)
        history = [{"epoch": e + 1, "val_top1": val - 2 * (epochs - e - 1), "train_loss": 1.0 / (e + 1)} for e in range(epochs)]
        selects.append(base | {"run_id": run_id, "stage": "select", "seed": 0, "history": history,
                               "metrics": {"val_top1": val, "test_top1": None},
                               "hparams": {"lr": point_lr, "weight_decay": 0.0},
                               "config": {"method": {"name": method, "layers": list(layers), "head": head}, "dataset": {"name": dataset},
                                          "trainer": {"lr": point_lr, "epochs": epochs}, "seed": 0}})
        points.append({"lr": point_lr, "val_top1": val, "val_loss": 1.0 - val / 100, "run_id": run_id})
    chosen = SPACE.index(lr)
    selection = {"space": {"lr": SPACE}, "rule": "grid", "budget": len(SPACE), "chosen": {"lr": lr},
                 "chosen_index": chosen, "val_top1": points,
                 "compute": {"runs": len(SPACE), "train_steps": 100 * len(SPACE), "wall_time_s": 60.0 * len(SPACE)}}
    edge = [f"lr={'high' if chosen == len(SPACE) - 1 else 'low'}"]
    finals = []
    for seed in seeds:
        run_id = rid(dataset, model, method, layers, head, "final", seed)
        pred, target = _predictions(n_test, acc, run_id)
        rec = base | {"run_id": run_id, "stage": "final", "seed": seed,
                      "metrics": {"test_top1": 100.0 * float((pred == target).mean())},
                      "history": [{"epoch": e + 1, "train_loss": 0.9 / (e + 1)} for e in range(epochs)],
                      "hparams": {"lr": lr, "weight_decay": 0.0, "edge_flags": edge, "selected_from": selection},
                      "config": {"method": {"name": method, "layers": list(layers), "head": head}, "dataset": {"name": dataset},
                                 "trainer": {"lr": lr, "epochs": epochs}, "seed": seed}}
        if predictions:
            rec["predictions"] = encode(pred, target)
        finals.append(rec)
    return selects + finals


def study(datasets=(("d_nat", "natural"), ("d_str", "structured")), models=("m_small",), methods=METHODS,
          unpaired=("bitfit",), **kw) -> list[dict]:
    """Every (dataset, model, method) cell; the methods in ``unpaired`` keep no predictions."""
    out = []
    for d, (dataset, group) in enumerate(datasets):
        for model in models:
            for method, layers, head, acc, params, memory, step, lr in methods:
                out += cell_records(dataset, group, model, method, layers, head, acc - 0.02 * d, params, memory,
                                    step, lr, predictions=method not in unpaired, **kw)
    return out


def write(root: Path, records: list[dict]) -> Path:
    """``root/<run_id>/record.json`` for each record; values json cannot hold (NaN, inf) as Python writes them."""
    for rec in records:
        if any(isinstance(v, float) and not np.isfinite(v) for v in _leaves(rec)):
            path = root / rec["run_id"] / "record.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rec))  # NaN / Infinity literals: a hand-edited record
        else:
            write_record(root / rec["run_id"] / "record.json", rec)
    return root


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree
