"""One cell: compose -> validate -> build -> train -> evaluate -> measure -> record."""
from __future__ import annotations

import hashlib
import json
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from .results.store import SCHEMA_VERSION, finished_ok, read_record, write_record
from .validate import validate

# Keys that say where things go or how they are shown, not what is computed: left out of the run id.
_NOT_IDENTITY = ("paths", "logger", "hydra", "force")


def run_id_of(cfg: DictConfig) -> str:
    c = OmegaConf.to_container(cfg, resolve=False)
    for key in _NOT_IDENTITY:
        c.pop(key, None)
    c.get("trainer", {}).pop("progress", None)
    for key in ("cache", "cache_dir"):  # how images are read, not what is computed
        c.get("dataset", {}).pop(key, None)
    return hashlib.sha1(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(e).lower()


class _NoLogger:
    def start(self, *a, **k): ...
    def log(self, *a, **k): ...
    def finish(self, *a, **k): ...


def _logger(cfg: DictConfig):
    if cfg.logger.get("name", "none") != "wandb":
        return _NoLogger()
    from .loggers.wandb_logger import WandbLogger
    return WandbLogger({k: v for k, v in OmegaConf.to_container(cfg.logger, resolve=True).items() if k != "name"})


def run_dir_of(cfg: DictConfig, run_id: str) -> Path:
    return Path(cfg.paths.results_dir) / run_id


def run(cfg: DictConfig, hparams: dict | None = None) -> dict:
    """Run one cell; returns its record. Invalid configs raise ``ConfigError`` before anything is written.

    ``hparams``: extra entries for the record's ``hparams`` that are not part of the run's identity
    (a protocol's grid size and selection scores)."""
    facts = validate(cfg)
    rid = run_id_of(cfg)
    rdir = run_dir_of(cfg, rid)
    rec_path = rdir / "record.json"
    if finished_ok(rec_path) and not cfg.get("force", False):
        print(f"[apbench] {rid}: a finished ok record exists ({rec_path}); skipped")
        return read_record(rec_path)

    from .cell import execute

    m = OmegaConf.to_container(cfg.method, resolve=True)
    record = {
        "schema": SCHEMA_VERSION, "run_id": rid, "status": "failed",
        "dataset": cfg.dataset.name, "dataset_group": cfg.dataset.get("group"),
        "protocol": cfg.protocol.name, "stage": cfg.protocol.stage,
        "model": cfg.model.get("id", cfg.model.name), "method": m["name"], "head": m.get("head", "linear"),
        "layers": facts["points"], "seed": cfg.seed,
        "hparams": {k: cfg.trainer[k] for k in ("lr", "weight_decay", "epochs", "batch_size", "optimizer")}
        | {"image_size": facts["preprocessing"]["input_size"][-1], "lr_scale": m.get("lr_scale") or {}}
        | (hparams or {}),
        "metrics": {}, "params": {}, "efficiency": {}, "preprocessing": facts["preprocessing"],
        "config": OmegaConf.to_container(cfg, resolve=True), "error": None,
        "started_at": _now(), "finished_at": None,
    }
    logger = _logger(cfg)
    logger.start(record["config"], tags=[f"dataset:{record['dataset']}", f"model:{record['model']}",
                                         f"method:{record['method']}", f"head:{record['head']}",
                                         *[f"layer:{p}" for p in record["layers"]]], name=rid)
    t0 = time.perf_counter()
    try:
        execute(cfg, facts, rdir, record, on_epoch=lambda h: logger.log(h, step=h["epoch"]))
        record["status"] = "ok"
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or submitit exiting after requeueing a preempted job:
        raise                                # no record, the checkpoint stays, the next attempt resumes
    except BaseException as e:  # one failed run never takes a sweep down: record it and go on
        record["status"] = "oom" if _is_oom(e) else "failed"
        record["error"] = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        print(f"[apbench] {rid}: {record['status']}: {type(e).__name__}: {e}")
    record["wall_time_s"] = time.perf_counter() - t0
    record["finished_at"] = _now()
    write_record(rec_path, record)
    logger.finish(record)
    if record["status"] == "ok":
        (rdir / "checkpoint.pt").unlink(missing_ok=True)
    return record
