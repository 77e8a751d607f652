"""Reliability suite: shared helpers, and the tally behind the one summary line it prints.

Every check here drives the real ``python -m apbench`` in a subprocess (with a timeout) on the tiny
ResNet and tiny real data, so what is tested is what a user's shell would see -- or, for bad input
refused before any work, the same entry point in-process (``apbench.cli.main``, whose return value
is the exit status), which costs a validation instead of a Python start.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
TINY = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", "trainer.progress=false"]


@dataclass
class Tally:
    bad_inputs: int = 0
    clear_errors: int = 0
    killed: int = 0
    resumed: int = 0
    writers: int = 0
    writes: int = 0
    lost_or_corrupt: int = 0
    used: bool = False

    def line(self) -> str:
        return (f"reliability: {self.bad_inputs} bad inputs tried, {self.clear_errors} clear errors given, "
                f"{self.killed} runs killed, {self.resumed} runs resumed, {self.writers} concurrent writers "
                f"({self.writes} writes), {self.lost_or_corrupt} records lost or corrupted")


_TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Tally:
    _TALLY.used = True
    return _TALLY


def pytest_sessionfinish(session):
    """A pytest-xdist worker hands its counts to the controller, which prints the one summary line."""
    if hasattr(session.config, "workeroutput") and _TALLY.used:
        session.config.workeroutput["reliability_tally"] = asdict(_TALLY)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    counts = getattr(node, "workeroutput", {}).get("reliability_tally")
    if counts:
        for key, value in counts.items():
            merged = (_TALLY.used or value) if key == "used" else getattr(_TALLY, key) + value
            setattr(_TALLY, key, merged)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _TALLY.used:  # through the reporter, so it shows with -q too
        terminalreporter.write_sep("=", "reliability summary")
        terminalreporter.write_line(_TALLY.line())


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
