"""`apbench run` exits with a code that says how the runs ended (issue 16, item 11): 0 ok, 1 a run
failed, 2 bad input (no record), 3 out of memory -- for one run and for a sweep. In-process through
``apbench.cli.main`` (what ``python -m apbench`` exits with), plus one real process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from apbench.cli import main
from apbench.commands.run import EXIT_CODES

TINY = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", "trainer.progress=false",
        "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
# Raises when the optimizer is built (a parameter group the method does not have): a failed record.
FAILS = "+method.lr_scale.bogus=2.0"
# Trains on the 40 images there are, then the efficiency measures' synthetic batch of 10**12 images is
# refused by the allocator at once (12 PB: past any address space): an oom record.
OOM = "trainer.batch_size=1000000000000"


def _records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("record.json"))]


def test_a_run_whose_record_says_failed_exits_1(tmp_path, capsys):
    code = main(["run", *TINY, f"paths.root_dir={tmp_path}", FAILS, "trainer.measure_efficiency=false"])
    [rec] = _records(tmp_path)
    assert (rec["status"], code) == ("failed", 1)
    assert "lr_scale names group(s) ['bogus']" in rec["error"]["message"]


def test_a_run_out_of_memory_exits_3(tmp_path):
    code = main(["run", *TINY, f"paths.root_dir={tmp_path}", OOM])
    [rec] = _records(tmp_path)
    assert (rec["status"], code) == ("oom", 3)


def test_a_sweep_with_a_failed_run_exits_1_and_names_it(tmp_path, capsys):
    code = main(["run", "-m", *TINY, f"paths.root_dir={tmp_path}", "trainer.measure_efficiency=false",
                 "trainer.lr=1e30,0.001", "trainer.head_lr=${trainer.lr}"])
    err = capsys.readouterr().err
    statuses = sorted((r["hparams"]["lr"], r["status"]) for r in _records(tmp_path))
    assert statuses == [(0.001, "ok"), (1e30, "failed")] and code == 1
    assert "1 run(s) did not end ok" in err and "trainer.lr=1e+30" in err


def test_the_process_exit_status_is_the_code(tmp_path):
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "apbench", "run", *TINY, f"paths.root_dir={tmp_path}", FAILS,
                          "trainer.measure_efficiency=false"], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 1, out.stderr[-2000:]
    assert [r["status"] for r in _records(tmp_path)] == ["failed"]


def test_the_readme_lists_every_exit_code():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = [line.strip() for line in EXIT_CODES.splitlines()[1:]]
    assert len(lines) == 4 and all(f"`{line[0]}` {line[1:].strip()}" in readme for line in lines), lines
