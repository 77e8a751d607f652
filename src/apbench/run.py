"""One cell: compose -> validate -> build -> train -> evaluate -> measure -> record."""
from __future__ import annotations

import errno
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import identity, lease
from .filemode import make_writable_dir
from .results.store import SCHEMA_VERSION, finished_ok, read_record, write_record
from .errors import ConfigError, InputError
from .termination import Terminated, exits_on_sigterm
from .validate import validate


def run_id_of(cfg: DictConfig) -> str:
    """The run id: ``identity.config_digest`` (the config without ``identity.NOT_IDENTITY``)."""
    return identity.config_digest(cfg)


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
    fix = "set paths.results_dir (or paths.root_dir) to a folder you can write"
    try:
        return make_writable_dir(rdir)
    except OSError as e:
        if rdir.is_dir():
            raise InputError(f"the run folder {rdir} is not writable ({e.strerror or e}); make it writable "
                             f"(chmod u+w {rdir}) or {fix}") from None
        raise InputError(f"{key}={rdir.parent} is not a writable folder ({e.strerror or e}): cannot create "
                         f"the run folder {rdir}; {fix}") from None


def _clean_leftovers(rid: str, rdir: Path) -> None:
    """A kill between the record's rename and the checkpoint's removal leaves a checkpoint beside an ok
    record: removed on the next launch (unless a live process holds the run's lease)."""
    left = [p for p in [rdir / "checkpoint.pt", *rdir.glob(".checkpoint.pt.*.tmp")] if p.exists()]
    if left and lease.holder(rdir) is None:
        for p in left:
            p.unlink(missing_ok=True)
        print(f"[apbench] {rid}: removed {', '.join(p.name for p in left)} left beside the ok record")


def _finished(cfg: DictConfig, facts: dict, rid: str, rdir: Path, legacy_id: str) -> dict | None:
    """The ok record of this very run (same config digest and input digests), or None when it must run.

    Records written before input digests (no ``identity``) cannot be checked: they are skipped as
    before, saying so; this includes those in the folder of the earlier run-id rule."""
    rec_path = rdir / "record.json"
    if not finished_ok(rec_path):
        legacy = run_dir_of(cfg, legacy_id) / "record.json"
        if legacy != rec_path and finished_ok(legacy) and "identity" not in read_record(legacy):
            print(f"[apbench] {rid}: a finished ok record of this config from before run ids left out "
                  f"{', '.join(identity.NEWLY_NOT_IDENTITY)} exists ({legacy}); "
                  "it has no input digests, so its weights and data are not checked; skipped "
                  f"(force=true reruns it into {rdir})")
            return read_record(legacy)
        return None
    rec = read_record(rec_path)
    if "identity" not in rec:
        print(f"[apbench] {rid}: a finished ok record exists ({rec_path}) without input digests (written "
              "before apbench recorded them): its weights and data are not checked; skipped (force=true reruns it)")
        _clean_leftovers(rid, rdir)
        return rec
    try:
        now = identity.of_config(cfg, facts["preprocessing"])
    except Exception as e:  # the loader's DataError: missing or moved data
        raise InputError(f"the finished run in {rdir} cannot be checked against its inputs: {e}") from None
    changed = identity.changes(rec["identity"], now)
    if not changed:
        print(f"[apbench] {rid}: a finished ok record exists ({rec_path}); skipped")
        _clean_leftovers(rid, rdir)
        return rec
    print(f"[apbench] {rid}: the finished record {rec_path} was made from other inputs: "
          f"{'; '.join(changed)} changed; running it again (the new record replaces it)")
    return None


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
    legacy_id = identity.legacy_run_id(cfg)  # the old rule hashed the config as composed, before recipes
    cfg = resolve(cfg)  # null trainer keys = the method's recipe: the run id names what is trained
    facts = validate(cfg)
    rid = run_id_of(cfg)
    rdir = run_dir_of(cfg, rid)
    rec_path = rdir / "record.json"
    force = bool(cfg.get("force", False))
    seen_ok = finished_ok(rec_path)
    if not force and (done := _finished(cfg, facts, rid, rdir, legacy_id)) is not None:
        return done

    created = _check_writable(rdir, "paths.results_dir")
    m = OmegaConf.to_container(cfg.method, resolve=True)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    record = {
        "schema": SCHEMA_VERSION, "run_id": rid, "status": "failed",
        "dataset": identity.dataset_name(cfg), "dataset_group": cfg.dataset.get("group"),
        "dataset_config": cfg.dataset.name, "num_classes": cfg.dataset.get("num_classes"), "class_names": None,
        "protocol": cfg.protocol.name, "stage": cfg.protocol.stage,
        "model": identity.architecture(model_cfg), "model_config": model_cfg.get("id") or model_cfg["name"],
        "weights": None, "method": m["name"], "head": m.get("head", "linear"),
        "layers": facts["points"], "seed": cfg.seed,
        "hparams": {k: cfg.trainer[k] for k in ("lr", "head_lr", "weight_decay", "epochs", "batch_size", "optimizer",
                                                "scheduler")} | epochs_info(cfg)
        | {"image_size": facts["preprocessing"]["input_size"][-1], "lr_scale": m.get("lr_scale") or {}}
        | (hparams or {}),
        "metrics": {}, "params": {}, "efficiency": {}, "preprocessing": facts["preprocessing"],
        "config": OmegaConf.to_container(cfg, resolve=True), "error": None,
        "started_at": _now(), "finished_at": None,
    }
    held = lease.acquire(rdir, rid)
    if held is None:  # another process trains this run now: it writes the record
        why = lease.describe(lease.holder(rdir) or {"host": "?", "pid": "?", "age_s": 0.0})
        print(f"[apbench] {rid}: {why}; skipped here")
        return record | {"status": "skipped", "skipped_because": why}
    try:
        with exits_on_sigterm():
            if not force and not seen_ok and (done := _finished(cfg, facts, rid, rdir, legacy_id)) is not None:
                return done  # another process finished it between the first look and taking the lease
            return _run_held(cfg, facts, rid, rdir, record)
    except Terminated as e:
        held.release()  # before saying so: a requeued job may already be looking
        kept = "its last epoch checkpoint is kept" if (rdir / "checkpoint.pt").is_file() else "no epoch had finished"
        print(f"[apbench] {rid}: stopped by SIGTERM (pre-emption); {kept}, its lease released, no record written; "
              f"exiting with status {e.code} so the launcher requeues it (the next launch resumes it)",
              file=sys.stderr, flush=True)
        raise
    finally:
        held.release()
        if created:
            _rmdir_quiet(rdir)  # nothing was written (refused input, Ctrl-C): leave no empty folder


def _run_held(cfg: DictConfig, facts: dict, rid: str, rdir: Path, record: dict) -> dict:
    from .cell import execute

    rec_path = rdir / "record.json"
    record["weights"] = identity.weights_of(OmegaConf.to_container(cfg.model, resolve=True))
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
        raise  # no record; a checkpoint stays, so the next attempt resumes (only an empty folder is removed)
    except BaseException as e:  # one failed run never takes a sweep down: record it and go on
        record["status"] = "oom" if _is_oom(e) else "failed"
        record["error"] = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        print(f"[apbench] {rid}: {record['status']}: {type(e).__name__}: {e}")
    record["wall_time_s"] = time.perf_counter() - t0
    record["finished_at"] = _now()
    if record["status"] != "ok" and finished_ok(rec_path) and _same_run(read_record(rec_path), record):
        # A duplicate launch of the same cell failed while another finished: keep the good result
        # (unless it is known to be made from other inputs: then it no longer describes this run).
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


def _same_run(a: dict, b: dict) -> bool:
    """False only when both records carry identities and they differ."""
    da, db = ((r.get("identity") or {}).get("digest") for r in (a, b))
    return da is None or db is None or da == db


def _rmdir_quiet(path: Path) -> None:
    try:
        path.rmdir()  # only when empty
    except OSError:
        pass
