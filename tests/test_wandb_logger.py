"""WandbLogger: offline by default, never breaks a run, never sends secrets."""
import sys
import types

import pytest

from apbench.loggers import WandbLogger
from apbench.loggers.wandb_logger import has_api_key, record_summary, resolve_mode, scrub

URL = "https://api.example.test"
RECORD = {"run_id": "abc123", "status": "ok",
          "metrics": {"test_top1": 71.5, "val_top1": 70.0, "train_loss": None},
          "params": {"trainable": 1000}, "efficiency": {"precision": "fp32", "epoch_time_s": 2.5},
          "env": {"hostname": "node1"}}


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path))
    return tmp_path


def test_mode_follows_api_key(tmp_path):
    netrc = tmp_path / "netrc"
    no_key = {"NETRC": str(netrc)}
    assert resolve_mode(None, URL, no_key) == "offline"
    assert resolve_mode("online", URL, no_key) == "offline"  # online without a key would prompt
    assert resolve_mode("disabled", URL, no_key) == "disabled"
    assert resolve_mode(None, URL, {**no_key, "WANDB_API_KEY": "x" * 40}) == "online"
    netrc.write_text("machine api.example.test login user password " + "y" * 40 + "\n")
    assert has_api_key(URL, no_key) and resolve_mode("auto", URL, no_key) == "online"
    assert not has_api_key("https://other.test", no_key)


def test_secrets_and_non_numbers_stay_out():
    cfg = {"lr": 0.1, "logger": {"api_key": "s", "project": "p"}, "HF_TOKEN": "t", "runs": [{"password": 1}]}
    assert scrub(cfg) == {"lr": 0.1, "logger": {"project": "p"}, "runs": [{}]}
    assert record_summary(RECORD) == {"metrics/test_top1": 71.5, "metrics/val_top1": 70.0,
                                      "params/trainable": 1000, "efficiency/epoch_time_s": 2.5}


def test_offline_run_writes_run_dir(offline_env):
    logger = WandbLogger({"project": "apbench-test", "dir": str(offline_env)})
    logger.start({"lr": 0.1, "api_key": "never-logged"}, tags=["ap", "fmnist1k"], name="cell-1")
    assert logger.active and logger.mode == "offline"
    logger.log({"train/loss": 1.0}, step=0)
    logger.finish(RECORD)
    assert not logger.active
    run_dirs = list((offline_env / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    # offline, config and summary live only in the run's transaction log; its strings are plain bytes
    # wandb's service process may still be flushing the log after finish() returns: wait for it.
    import time
    deadline = time.monotonic() + 30
    while True:
        data = next(run_dirs[0].glob("run-*.wandb")).read_bytes()
        if (b"metrics/test_top1" in data and b"cell-1" in data) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert b"metrics/test_top1" in data and b"cell-1" in data
    assert b"never-logged" not in data


def test_missing_wandb_only_warns(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    logger = WandbLogger({})
    with pytest.warns(RuntimeWarning, match="not importable"):
        logger.start({"lr": 0.1}, tags=[], name="x")
    assert not logger.active
    logger.log({"loss": 1.0}, step=1)
    logger.finish({"status": "failed"})


def test_wandb_errors_only_warn(monkeypatch):
    def refuse(**kwargs):
        raise RuntimeError("server says no")
    fake = types.SimpleNamespace(init=refuse, Settings=lambda **kw: types.SimpleNamespace(base_url=URL))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = WandbLogger({"mode": "offline"})
    with pytest.warns(RuntimeWarning, match="server says no"):
        logger.start({}, tags=[], name="x")
    assert not logger.active


def test_failed_record_exits_non_zero(monkeypatch):
    finished = {}
    run = types.SimpleNamespace(summary={}, log=lambda *a, **k: None,
                                finish=lambda exit_code: finished.update(code=exit_code))
    fake = types.SimpleNamespace(init=lambda **kw: run,
                                 Settings=lambda **kw: types.SimpleNamespace(base_url=URL))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = WandbLogger({"mode": "offline"})
    logger.start({}, tags=[], name="x")
    logger.finish({"status": "oom", "run_id": "r"})
    assert finished == {"code": 1} and run.summary["status"] == "oom"
