"""Launchers: the slurm/local configs, what submitit_slurm submits (fake sbatch), real local and fake-SLURM
multiruns, and resuming a preempted run from its epoch checkpoint."""
import os
import signal
import subprocess
import sys
import time

import pytest

import fake_slurm
from apbench.results.store import iter_records
from conftest import CONF, compose

FAST = ["trainer.measure_efficiency=false", "method=linear_probe,ap"]
SRC = str(CONF.parent / "src")


def _env(env=None):
    """Job processes import this checkout's apbench, whatever the venv has installed."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"  # job processes run side by side on few cores: no thread oversubscription
    return env


def _launcher(name, monkeypatch=None):
    from hydra import compose as hcompose, initialize_config_dir
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hcompose("config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True).hydra.launcher


def _multirun(overrides, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "apbench", "run", "-m", *overrides], cwd=cwd, env=_env(env),
                          capture_output=True, text=True, timeout=timeout)


def test_launcher_configs(monkeypatch):
    monkeypatch.setenv("APBENCH_SLURM_PARTITION", "gpu-a100")
    slurm = _launcher("slurm")
    assert slurm._target_.endswith("SlurmLauncher") and slurm.partition == "gpu-a100"
    assert (slurm.gpus_per_node, slurm.tasks_per_node, slurm.nodes) == (1, 1, 1)
    assert slurm.additional_parameters.requeue is True and slurm.max_num_timeout > 0
    monkeypatch.delenv("APBENCH_SLURM_PARTITION")
    assert _launcher("slurm").partition is None          # the cluster's default partition
    local = _launcher("local")
    assert local._target_.endswith("LocalLauncher") and local.gpus_per_node == 1


def test_fake_sbatch_sees_one_gpu_per_job_an_array_a_time_limit_and_requeue(tiny_overrides, tmp_path):
    slurm_dir = tmp_path / "slurm"
    env = fake_slurm.install(slurm_dir, run=False, state="CANCELLED")  # jobs "cancelled": the sweep ends at once
    env["APBENCH_SLURM_PARTITION"] = "gpu-test"
    out = _multirun([*tiny_overrides, *FAST, "hydra/launcher=slurm", "hydra.launcher.timeout_min=30"],
                    tmp_path, env, timeout=180)
    batch = (slurm_dir / "batch.sh").read_text()
    assert (slurm_dir / "sbatch_argv").read_text().strip().endswith(".sh")   # `sbatch FILE`: the flags are inside
    for flag in ("--array=0-1%2", "--gpus-per-node=1", "--ntasks-per-node=1", "--nodes=1", "--time=30",
                 "--requeue", "--partition=gpu-test", "--signal=USR2@120", "--cpus-per-task=8"):
        assert f"#SBATCH {flag}\n" in batch, flag
    assert "submitit.core._submit" in batch
    assert out.returncode != 0 and "CANCELLED" in out.stderr + out.stdout     # what the fake sacct said
    assert not list(iter_records(tmp_path / "runs"))                         # nothing ran


def test_preempted_run_leaves_no_record_and_resumes_in_the_same_run_dir(tiny_overrides, tmp_path, monkeypatch):
    from apbench import run as run_module

    overrides = [*tiny_overrides, "method=ap", "method.layers=[2]", "trainer.epochs=3",
                 "trainer.measure_efficiency=false"]

    def preempted(self, h, step=None):  # what submitit does on SIGUSR2 after requeueing: sys.exit
        if h["epoch"] == 2:
            raise SystemExit(-1)

    monkeypatch.setattr(run_module._NoLogger, "log", preempted)
    cfg = compose(*overrides)
    rdir = tmp_path / "runs" / run_module.run_id_of(cfg)
    with pytest.raises(SystemExit):
        run_module.run(cfg)
    assert (rdir / "checkpoint.pt").exists() and not (rdir / "record.json").exists()
    monkeypatch.undo()
    rec = run_module.run(compose(*overrides))        # the requeued job: same config, same run dir
    assert rec["status"] == "ok" and rec["resumed_from_epoch"] == 2 and (rdir / "record.json").exists()


@pytest.mark.slow
def test_submitit_local_multirun(tiny_overrides, tmp_path):
    out = _multirun([*tiny_overrides, *FAST, "hydra/launcher=local", "hydra.launcher.timeout_min=10"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = list(iter_records(tmp_path / "runs"))
    assert sorted(r["method"] for r in recs) == ["ap", "linear_probe"] and all(r["status"] == "ok" for r in recs)


@pytest.mark.slow
def test_fake_slurm_array_runs_and_a_preempted_job_is_requeued_and_resumes(tiny_overrides, tmp_path):
    slurm_dir = tmp_path / "slurm"
    env = fake_slurm.install(slurm_dir, run=True)
    proc = subprocess.Popen([sys.executable, "-m", "apbench", "run", "-m", *tiny_overrides, *FAST,
                             "trainer.epochs=20", "trainer.prefix_cache=off", "hydra/launcher=slurm"], cwd=tmp_path, env=_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Preempt job 0 (linear_probe) once it has written an epoch checkpoint, as SLURM would: SIGUSR2.
        deadline = time.time() + 240
        while not (list((tmp_path / "runs").glob("*/checkpoint.pt")) and (slurm_dir / "task_0.pid").exists()):
            assert time.time() < deadline and proc.poll() is None, "job 0 never reached its first checkpoint"
            time.sleep(0.2)
        os.kill(int((slurm_dir / "task_0.pid").read_text()), signal.SIGUSR2)
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = "".join(p.read_text() for p in slurm_dir.glob("task_*.log"))
    assert proc.returncode == 0, (out[-3000:], logs[-3000:])
    assert "requeue 123_0" in (slurm_dir / "scontrol_calls").read_text()
    recs = {r["method"]: r for r in iter_records(tmp_path / "runs")}
    assert sorted(recs) == ["ap", "linear_probe"] and all(r["status"] == "ok" for r in recs.values())
    assert recs["linear_probe"]["resumed_from_epoch"] >= 1      # the requeued attempt resumed, did not restart


def test_shard_selects_every_nth_job(monkeypatch):
    from apbench.commands.run import _in_shard
    monkeypatch.setenv("APBENCH_SHARD", "1/3")
    assert [n for n in range(7) if _in_shard(n)] == [1, 4]
    monkeypatch.setenv("APBENCH_SHARD", "3/3")
    with pytest.raises(ValueError, match="APBENCH_SHARD"):  # checked before Hydra starts (commands.run)
        _in_shard(0)
    monkeypatch.delenv("APBENCH_SHARD")
    assert _in_shard(5)


@pytest.mark.slow
def test_a_shard_process_runs_only_its_jobs(tiny_overrides, tmp_path):
    out = _multirun([*tiny_overrides, *FAST], tmp_path, dict(os.environ, APBENCH_SHARD="1/2"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r["method"] for r in iter_records(tmp_path / "runs")] == ["ap"]    # job 1 of linear_probe,ap
