"""One cell: compose -> validate -> build -> train -> evaluate -> measure -> record."""
from __future__ import annotations

import errno
import hashlib
import json
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from .results.store import SCHEMA_VERSION, finished_ok, read_record, write_record
from .validate import ConfigError, InputError, validate

# Keys that say where things go or how they are shown, not what is computed: left out of the run id.
_NOT_IDENTITY = ("paths", "logger", "hydra", "force")


def run_id_of(cfg: DictConfig) -> str:
    from .recipes import resolve
    c = OmegaConf.to_container(resolve(cfg), resolve=False)  # the recipe filled in (idempotent): what runs
    for key in _NOT_IDENTITY:
        c.pop(key, None)
    c.get("trainer", {}).pop("progress", None)
    c.get("trainer", {}).pop("prefix_cache_dir", None)  # a shared store gives bit-identical activations
    for key in ("cache", "cache_dir"):  # how images are read, not what is computed
        c.get("dataset", {}).pop(key, None)
    return hashlib.sha1(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_oom(e: BaseException) -> bool:
    text = str(e).lower()  # the CPU allocator says "can't allocate memory", CUDA "out of memory"
    return (isinstance(e, (torch.OutOfMemoryError, MemoryError))
            or "out of memory" in text or "can't allocate memory" in text)


class RecordWriteError(OSError):
    """The record could not be written (disk full, quota, read-only): the run's result is lost."""


def _check_writable(rdir: Path, key: str) -> bool:
    """Fail before any work when the run folder cannot be written; True when this call created it."""
    existed = rdir.is_dir()
    try:
        rdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=rdir):
            pass
    except OSError as e:
        raise InputError(f"{key}={rdir.parent} is not a writable folder ({e.strerror or e}); "
                         "set paths.results_dir (or paths.root_dir) to a folder you can write") from None
    return not existed


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
    from .recipes import epochs_info, resolve
    cfg = resolve(cfg)  # null trainer keys = the method's recipe: the run id names what is trained
    facts = validate(cfg)
    rid = run_id_of(cfg)
    rdir = run_dir_of(cfg, rid)
    rec_path = rdir / "record.json"
    if finished_ok(rec_path) and not cfg.get("force", False):
        print(f"[apbench] {rid}: a finished ok record exists ({rec_path}); skipped")
        return read_record(rec_path)

    from .cell import execute

    created = _check_writable(rdir, "paths.results_dir")
    m = OmegaConf.to_container(cfg.method, resolve=True)
    record = {
        "schema": SCHEMA_VERSION, "run_id": rid, "status": "failed",
        "dataset": cfg.dataset.name, "dataset_group": cfg.dataset.get("group"),
        "protocol": cfg.protocol.name, "stage": cfg.protocol.stage,
        "model": cfg.model.get("id", cfg.model.name), "method": m["name"], "head": m.get("head", "linear"),
        "layers": facts["points"], "seed": cfg.seed,
        "hparams": {k: cfg.trainer[k] for k in ("lr", "head_lr", "weight_decay", "epochs", "batch_size", "optimizer",
                                                "scheduler")} | epochs_info(cfg)
        | {"image_size": facts["preprocessing"]["input_size"][-1], "lr_scale": m.get("lr_scale") or {}}
        | (hparams or {}),
        "metrics": {}, "params": {}, "efficiency": {}, "preprocessing": facts["preprocessing"],
        "config": OmegaConf.to_container(cfg, resolve=True), "error": None,
        "started_at": _now(), "finished_at": None,
    }
    logger = _logger(cfg)

    def start_logger():  # only once data and weights loaded: bad input leaves no logger run behind
        logger.start(record["config"], tags=[f"dataset:{record['dataset']}", f"model:{record['model']}",
                                             f"method:{record['method']}", f"head:{record['head']}",
                                             *[f"layer:{p}" for p in record["layers"]]], name=rid)
    t0 = time.perf_counter()
    try:
        execute(cfg, facts, rdir, record, on_epoch=lambda h: logger.log(h, step=h["epoch"]), on_ready=start_logger)
        record["status"] = "ok"
    except (KeyboardInterrupt, SystemExit, ConfigError):  # Ctrl-C, refused input, or submitit exiting
        if created:  # after requeueing a preempted job: no record; the checkpoint stays, so the next
            _rmdir_quiet(rdir)  # attempt resumes (only an empty run folder is removed)
        raise
    except BaseException as e:  # one failed run never takes a sweep down: record it and go on
        record["status"] = "oom" if _is_oom(e) else "failed"
        record["error"] = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        print(f"[apbench] {rid}: {record['status']}: {type(e).__name__}: {e}")
    record["wall_time_s"] = time.perf_counter() - t0
    record["finished_at"] = _now()
    if record["status"] != "ok" and finished_ok(rec_path):
        # A duplicate launch of the same cell failed while another finished: keep the good result.
        print(f"[apbench] {rid}: keeping the ok record already in {rec_path}; this attempt's failure is not written")
        logger.finish(record)
        return read_record(rec_path)
    try:
        write_record(rec_path, record)
    except OSError as e:
        hint = ("the disk is full or over quota: free space or point paths.results_dir at another disk"
                if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
                else "check that paths.results_dir is writable")
        raise RecordWriteError(e.errno, f"could not write the record {rec_path} ({e.strerror or e}); {hint}. "
                                        "Nothing partial was left; re-run the same command to redo this run") from e
    finally:
        logger.finish(record)
    if record["status"] == "ok":
        (rdir / "checkpoint.pt").unlink(missing_ok=True)
        for tmp in rdir.glob(".checkpoint.pt.*.tmp"):  # left by a run killed while saving
            tmp.unlink(missing_ok=True)
    return record


def _rmdir_quiet(path: Path) -> None:
    try:
        path.rmdir()  # only when empty
    except OSError:
        pass
