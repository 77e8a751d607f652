"""Reliability suite: shared helpers (the tally behind its one summary line is in tests/conftest.py).

Every check here drives the real ``python -m apbench`` in a subprocess (with a timeout) on the tiny
ResNet and tiny real data, so what is tested is what a user's shell would see -- or, for bad input
refused before any work, the same entry point in-process (``apbench.cli.main``, whose return value
is the exit status), which costs a validation instead of a Python start.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
TINY = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", "trainer.progress=false"]


def cli_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "APBENCH_ROOT", "APBENCH_DATA")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra.pop("PYTHONPATH", None), str(SRC),
                                                      env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"  # two cores shared: no oversubscription when checks run side by side
    env.update(extra)
    return env


def apbench(*args: str, cwd: Path, env: dict | None = None, timeout: float = 180,
            **popen) -> subprocess.CompletedProcess:
    """``python -m apbench ARGS`` as a user would type it; output captured as text."""
    return subprocess.run([sys.executable, "-m", "apbench", *args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, **popen)


def tiny(root: Path, *extra: str, multirun: bool = False) -> list[str]:
    """``run`` arguments for a fast tiny run writing under ``root``."""
    return ["run", *(["-m"] if multirun else []), *TINY, f"paths.root_dir={root}", *extra]


def records_under(root: Path) -> list[Path]:
    return sorted(Path(root).rglob("record.json"))
