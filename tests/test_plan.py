"""`apbench plan`: jobs as Hydra's basic sweeper makes them, runs in closed form, a measured estimate."""
import math
import re

import pytest
from omegaconf import OmegaConf

from apbench import cell_costs, sweep
from conftest import CONF

SWEEP = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu",
         "method=ap,lora,ssf", "method.layers=1,2",
         "protocol=vtab1k", "protocol.budget=4"]


def test_runs_match_the_closed_form():
    jobs = sweep.sweep_jobs(SWEEP, str(CONF))
    assert len(jobs) == 3 * 2
    assert sum(j.runs for j in jobs) == 3 * 2 * (4 + 5)                # methods x layers x (budget + seeds)
    assert [(j.cfg.method.name, j.cfg.method.layers) for j in jobs] == [
        ("ap", 1), ("ap", 2), ("lora", 1), ("lora", 2), ("ssf", 1), ("ssf", 2)]   # Hydra's order
    assert {j.grid_size for j in jobs} == {4} and "hydra" not in jobs[0].cfg
    assert {j.rule for j in jobs} == {"halton(seed=0)"}                 # every space here has 40 points


def test_a_preset_sweep_and_a_command_line_override_of_its_list():
    # The command line replaces the preset's dataset list, as it does for `apbench run -m`.
    jobs = sweep.sweep_jobs(["experiment=layer_sweep_cnn", "dataset=fmnist_tiny"], str(CONF))
    assert len(jobs) == 35 and sum(j.runs for j in jobs) == 35 * (8 + 5)
    assert [j.overrides[0] for j in jobs[:3]] == ["method.layers=input", "method.layers=0", "method.layers=1"]
    assert {j.cfg.trainer.epochs for j in jobs} == {100}
    # A layer sweep fixes the layer: the swept point is every select run's, never a drawn one.
    assert {str(c.method.layers) for c in jobs[2].run_cfgs} == {"1"}


def test_estimate_scales_the_step_time_by_epochs_and_images():
    jobs = sweep.sweep_jobs(SWEEP[:5] + ["protocol=vtab1k", "protocol.budget=4"], str(CONF))
    sweep.estimate(jobs, step_time=0.5)
    # fmnist_tiny: 40 train + 20 val, batch 8, 1 epoch: select runs 5 steps, final runs (train+val) 8.
    assert jobs[0].seconds == pytest.approx((4 * math.ceil(40 / 8) + 5 * math.ceil(60 / 8)) * 0.5)


def test_measured_step_time_on_this_machine(monkeypatch):
    import time

    # A clock that advances 0.5 s per reading: every timed section (start and end reading) lasts
    # exactly 0.5 s, so the measured cost and the estimate built from it are hand-computable.
    readings = iter(range(10**6))
    monkeypatch.setattr(time, "perf_counter", lambda: 0.5 * next(readings))
    jobs = sweep.sweep_jobs(["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu",
                            "method=ap", "method.layers=2"], str(CONF))
    notes = sweep.estimate(jobs, measure="first", steps=1)
    # steps=1: one timed step = 0.5 s; one eval / prefix batch of 32 (trainer=fast) = 0.5 s -> 1/64 s per image.
    # Efficiency measures: (1 + 2 throughput steps + 2) full steps + 3 batches of 8 eval images = 2.5 + 0.375.
    # fmnist_tiny, fixed protocol, 1 epoch, batch 8: ceil(40 / 8) = 5 steps, 20 val + 20 test evaluated,
    # 40 + 40 images through the prefix cache.
    assert jobs[0].seconds == 5 * 0.5 + 40 / 64 + 80 / 64 + 2.875
    assert notes == ["step time 0.5000 s/step, eval 15.62 ms/image, cache build 15.62 ms/image, efficiency "
                     "measures 2.9 s/run: ap on tiny_resnet, 32 px, batch 8, fp32, cpu, suffix from point 2 "
                     "(prefix cache); 1 timed steps after 2 warm-up"]


@pytest.mark.parametrize("overrides, point", [
    (["method=ap", "method.layers=3"], "3"),                                  # trains the suffix from block 3
    (["method=ap", "method.layers=3", "trainer.prefix_cache=off"], None),     # the user turned it off
    (["method=ap", "method.layers=3", "++dataset.augment=crop_flip"], None),  # random crops: no cache
    (["method=vp", "method.pad_width=4"], None),                              # acts at the pixels
    (["method=full_ft"], None)])                                              # BN statistics train
def test_the_estimate_follows_the_prefix_cache_decision(overrides, point):
    jobs = sweep.sweep_jobs(["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", *overrides],
                           str(CONF))
    cost = cell_costs.cell_costs(jobs[0].cfg, iters=1)
    assert cost.cache_point == point
    assert (cost.prefix_s_per_image > 0) == (point is not None) and cost.step_s > 0 and cost.eval_s_per_image > 0
    assert cost.measure_s > 0  # trainer=fast keeps the efficiency measures on


def test_a_run_costs_steps_plus_evaluation_plus_the_cache_build():
    cached = cell_costs.CellCost(step_s=0.5, eval_s_per_image=0.01, prefix_s_per_image=0.02, cache_point="3",
                           measure_s=7.0)
    # 10 epochs x ceil(100/32)=4 steps x 0.5 s + 50 evaluated x 0.01 s + (100 + 50) cached x 0.02 s + 7 s
    assert cached.run_seconds(10, 100, 32, 50) == pytest.approx(20 + 0.5 + 3.0 + 7.0)
    assert cached.run_seconds(10, 100, 32, 50, build=False) == pytest.approx(20 + 0.5 + 7.0)  # from the store
    uncached = cell_costs.CellCost(step_s=0.5, eval_s_per_image=0.01, prefix_s_per_image=0.02, cache_point=None)
    assert uncached.run_seconds(10, 100, 32, 50) == pytest.approx(20 + 0.5)


def test_with_a_shared_store_only_the_first_select_and_final_runs_build(monkeypatch, tmp_path):
    cost = cell_costs.CellCost(step_s=0.0, eval_s_per_image=0.0, prefix_s_per_image=1.0, cache_point="3")
    monkeypatch.setattr(sweep, "cell_costs", lambda *a, **k: cost)
    base = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", "method=ap",
            "method.layers=3", "method.space.method.layers=null", "protocol=vtab1k", "protocol.budget=2"]
    alone, = sweep.sweep_jobs(base, str(CONF))
    shared, = sweep.sweep_jobs(base + [f"trainer.prefix_cache_dir={tmp_path}"], str(CONF))
    sweep.estimate([alone]), sweep.estimate([shared])
    # fmnist_tiny: a select run caches 40 train + 20 val, a final run 60 train+val + 20 test; 1 s each
    assert alone.seconds == pytest.approx(2 * 60 + 5 * 80)
    assert shared.seconds == pytest.approx(60 + 80)


def test_cli_output_and_dry_run(capsys):
    from apbench.cli import main
    assert main(["plan", "-m", *SWEEP, "--step-time", "0.1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("apbench plan: 6 jobs, 54 runs (24 select + 30 final)")
    assert "4 select runs for every job (equal budget; halton(seed=0) x 6)" in out
    assert len(re.findall(r"^  #\d+ +runs=9 ", out, re.M)) == 6


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if p.stem not in ("demo", "cpu_lite0_fmnist1k", "small_models_digits", "pkg_suite_lite0")))  # script-driven presets: no sweeper params
def test_preset_headers_state_command_jobs_and_an_estimate(preset):
    text = (CONF / "experiment" / f"{preset}.yaml").read_text()
    assert text.startswith("# @package _global_")
    assert f"apbench run -m experiment={preset}\n" in text
    assert "ESTIMATE" in text and "GPU" in text
    params = OmegaConf.load(CONF / "experiment" / f"{preset}.yaml").hydra.sweeper.params
    jobs = math.prod(len(str(v).split(",")) for v in params.values())
    assert re.search(rf"\b({jobs}|{jobs:,}) jobs", text), f"header job count != {jobs}"


def test_a_job_that_does_not_compose_is_named():
    # vp has no `layers`: Hydra would refuse this sweep; plan says which job and why.
    with pytest.raises(SystemExit, match=r"job #2 \(.*method=vp method.layers=1\) does not compose"):
        sweep.sweep_jobs(["model=tiny_resnet", "method=ap,vp", "method.layers=1,2"], str(CONF))
