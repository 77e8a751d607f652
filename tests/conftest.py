"""Shared fixtures: tiny models of each family, composed configs, and a temporary project root."""
from __future__ import annotations

import os

# One thread per test process for every math library: `make test` runs two pytest-xdist workers on two
# cores, and BLAS/OpenMP pools of two threads each would oversubscribe them (a logistic-regression
# probe ran 10x slower so). Set before numpy, torch or sklearn load; subprocesses inherit it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"
torch.set_num_threads(1)

TINY = {  # family -> model config name in conf/model/
    "resnet": "tiny_resnet", "vit": "tiny_vit", "swin": "tiny_swin",
    "convnext": "tiny_convnext", "efficientnet": "tiny_efficientnet",
}


def tiny_model(family: str, num_classes: int = 10, device: str = "cpu") -> torch.nn.Module:
    """A randomly initialized tiny timm model of ``family`` (32 px input), seeded."""
    mc = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{TINY[family]}.yaml"))
    torch.manual_seed(0)
    with torch.device(device):
        return timm.create_model(mc["name"], pretrained=False, num_classes=num_classes, **mc["kwargs"])


@pytest.fixture
def make_tiny():
    return tiny_model


def compose(*overrides: str):
    """Compose conf/config.yaml with overrides, as `apbench run` would (no Hydra run dir)."""
    from hydra import compose as _compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return _compose(config_name="config", overrides=list(overrides), return_hydra_config=False)


@pytest.fixture
def tiny_overrides(tmp_path):
    """Overrides for a fast run on a tiny model and tiny real data, writing under tmp_path."""
    return ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu",
            f"paths.root_dir={tmp_path}"]


# CPU seconds per test (the process's and its children's), for finding what makes the suite slow on a
# machine that other work shares, where wall times mislead: APBENCH_TEST_CPU_LOG=FILE appends one
# "seconds<TAB>nodeid" line per test (benchmarks/README.md: the suite's time).
_CPU_LOG = os.environ.get("APBENCH_TEST_CPU_LOG")


def _cpu_seconds() -> float:
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if _CPU_LOG:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        start = _cpu_seconds()
        yield
        with open(_CPU_LOG, "a") as log:
            log.write(f"{_cpu_seconds() - start:.2f}\t{item.nodeid}\n")


# The reliability suite's tally (tests/reliability/) lives here, not in that folder's conftest: the
# pytest-xdist controller never collects, so it loads only this top-level conftest, and hooks defined
# below tests/reliability/ never ran there -- `make test` printed no summary line.
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
