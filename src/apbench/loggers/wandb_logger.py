"""Weights & Biases logging that can never break a run.

The record on disk is the source of truth; wandb is a convenience view of it. So every wandb
problem (package missing, init refused, network down) becomes one warning and the logger goes quiet.
Runs go online only when an API key is available, otherwise offline (``wandb sync`` uploads later):
a login prompt would hang a cluster job.
"""
from __future__ import annotations

import math
import netrc
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

MODES = ("online", "offline", "disabled")
RECORD_SECTIONS = ("metrics", "params", "efficiency")  # numeric run results worth a summary
SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential")
MAX_TAG_LEN = 64  # wandb rejects longer tags


def _warn(message: str) -> None:
    warnings.warn(f"wandb: {message}; the run goes on without wandb logging", RuntimeWarning, stacklevel=3)


def has_api_key(base_url: str, env: Mapping[str, str] | None = None) -> bool:
    """True when wandb would find an API key: ``WANDB_API_KEY`` or a netrc entry for the server.
    Only presence is checked; the key itself is never read into this process's state."""
    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    host = urlsplit(base_url).hostname or base_url
    path = Path(env.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        return netrc.netrc(str(path)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(requested: str | None, base_url: str, env: Mapping[str, str] | None = None) -> str:
    """The configured mode if given (``auto``/None otherwise), then ``WANDB_MODE``, then online only
    when a key exists; online without a key falls back to offline."""
    env = os.environ if env is None else env
    mode = requested if requested not in (None, "", "auto") else env.get("WANDB_MODE") or None
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)  # wandb's legacy spellings
    if mode not in MODES:
        mode = "online"
    if mode == "online" and not has_api_key(base_url, env):
        return "offline"
    return mode


def scrub(config):
    """Drop config entries whose key names a secret, at any depth (configs can carry tokens)."""
    if isinstance(config, Mapping):
        return {k: scrub(v) for k, v in config.items()
                if not any(word in str(k).lower() for word in SECRET_WORDS)}
    if isinstance(config, (list, tuple)):
        return [scrub(v) for v in config]
    return config


def record_summary(record: dict) -> dict:
    """Finite numbers of the record's result sections as ``section/key`` (wandb groups on '/')."""
    out = {}
    for section in RECORD_SECTIONS:
        for key, value in (record.get(section) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[f"{section}/{key}"] = value
    return out


class WandbLogger:
    """``start`` opens one wandb run, ``log`` streams metrics, ``finish(record)`` closes it.

    ``cfg`` is a mapping (dict or OmegaConf) with optional keys: ``enabled`` (default True),
    ``project`` (``apbench``), ``entity``, ``group``, ``job_type``, ``dir``, ``mode``
    (``auto``/``online``/``offline``/``disabled``).
    """

    def __init__(self, cfg: Mapping | None = None):
        cfg = cfg or {}
        self.enabled = bool(cfg.get("enabled", True))
        self.requested_mode = cfg.get("mode")
        self.init_kwargs = {k: cfg.get(k) for k in ("entity", "group", "job_type", "dir")}
        self.init_kwargs["project"] = cfg.get("project") or "apbench"
        self.mode: str | None = None  # resolved at start
        self._run = None

    @property
    def active(self) -> bool:
        return self._run is not None

    def start(self, config: dict, tags: list[str] = (), name: str | None = None) -> None:
        if not self.enabled:
            return
        if self._run is not None:
            _warn("start() before finish() of the previous run; closing it as failed")
            self._close(exit_code=1)
        try:
            import wandb
        except ImportError as e:
            _warn(f"package not importable ({e})")
            return
        try:
            base_url = wandb.Settings().base_url  # honours WANDB_BASE_URL
            self.mode = resolve_mode(self.requested_mode, base_url)
            self._run = wandb.init(
                **{k: v for k, v in self.init_kwargs.items() if v is not None},
                name=name, tags=[str(t)[:MAX_TAG_LEN] for t in tags], config=scrub(dict(config)),
                mode=self.mode, reinit="create_new",  # one wandb run per start/finish pair
                settings=wandb.Settings(save_code=False))
        except Exception as e:  # noqa: BLE001 - any wandb failure must not end the run
            _warn(f"init failed ({type(e).__name__}: {e})")
            self._run = None

    def log(self, metrics: dict, step: int | None = None) -> None:
        if self._run is None:
            return
        try:
            self._run.log(dict(metrics), step=step)
        except Exception as e:  # noqa: BLE001
            _warn(f"log failed ({type(e).__name__}: {e})")
            self._close(exit_code=1)

    def finish(self, record: dict) -> None:
        """Put the record's numbers in the run summary; a run whose status is not ok exits non-zero."""
        if self._run is None:
            return
        status = record.get("status")
        try:
            self._run.summary.update({**record_summary(record), "status": status,
                                      "run_id": record.get("run_id")})
        except Exception as e:  # noqa: BLE001
            _warn(f"summary update failed ({type(e).__name__}: {e})")
        self._close(exit_code=0 if status == "ok" else 1)

    def _close(self, exit_code: int) -> None:
        run, self._run = self._run, None
        try:
            run.finish(exit_code=exit_code)
        except Exception as e:  # noqa: BLE001
            _warn(f"finish failed ({type(e).__name__}: {e})")
