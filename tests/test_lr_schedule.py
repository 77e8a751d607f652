"""The lr of every optimizer step of a run, per parameter group, against a hand-computed sequence
(issue 26 item 2): linear warm-up over the recipe's declared fraction of the epochs, from 1/W of the
base lr at the first step to the base lr at step W, then cosine to zero (or steps at the milestones)."""
import math

import pytest

import apbench.engine.loop as loop
from apbench.run import run

from conftest import compose

# fmnist_tiny: 40 training images at batch 8 = 5 steps an epoch; 10 epochs = 50 steps. AP's recipe:
# AdamW, prompt lr 3e-2, head lr 1e-3; its warm-up fraction set to 0.2 -> 2 epochs = W = 10 steps.
RUN = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", "trainer.measure_efficiency=false",
       "method=ap", "method.layers=[2]", "trainer.epochs=10", "trainer.warmup_epochs=null", "method.recipe.warmup=0.2",
       "method.lr_scale={prompt: 2.0, head: 1.0}"]
BASE = {"prompt": 3e-2 * 2.0, "head": 1e-3}  # the prompt's lr doubled by lr_scale
W, T = 10, 50


def _lrs_of_each_step(monkeypatch, cfg) -> tuple[dict, list[dict]]:
    seen = []
    real = loop.make_optimizer

    def recording(*a, **k):
        opt = real(*a, **k)  # the lr each group steps with, read just before every optimizer step
        opt.register_step_pre_hook(lambda o, args, kwargs: seen.append({g["name"]: g["lr"] for g in o.param_groups}))
        return opt
    monkeypatch.setattr(loop, "make_optimizer", recording)
    rec = run(cfg)
    assert rec["status"] == "ok", rec["error"]
    return rec, seen


def test_warm_up_then_cosine_per_group(tmp_path, monkeypatch):
    rec, seen = _lrs_of_each_step(monkeypatch, compose(*RUN, f"paths.root_dir={tmp_path}"))
    assert rec["optimizer"]["warmup_steps"] == W and rec["optimizer"]["total_steps"] == T
    assert len(seen) == T
    # Hand-computed factors: warm-up (s + 1) / W, then 0.5 (1 + cos(pi (s - W) / (T - W))).
    want = [(s + 1) / W if s < W else 0.5 * (1 + math.cos(math.pi * (s - W) / (T - W))) for s in range(T)]
    for group, base in BASE.items():
        assert [lr[group] for lr in seen] == pytest.approx([base * f for f in want], rel=1e-12, abs=0), group
    # Spot values as literals: 1/10 at the first step, the base lr at the end of warm-up and at its
    # first cosine step, half way down the cosine exactly half, a quarter way 1/2 + sqrt(2)/4.
    prompt = [lr["prompt"] for lr in seen]
    assert prompt[0] == pytest.approx(0.006) and prompt[9] == pytest.approx(0.06) and prompt[10] == pytest.approx(0.06)
    assert prompt[30] == pytest.approx(0.03) and prompt[20] == pytest.approx(0.06 * 0.8535533905932737)
    assert seen[30]["head"] == pytest.approx(0.0005) and seen[0]["head"] == pytest.approx(0.0001)


def test_warm_up_then_steps_at_the_milestones(tmp_path, monkeypatch):
    rec, seen = _lrs_of_each_step(monkeypatch, compose(*RUN, f"paths.root_dir={tmp_path}", "trainer.scheduler=multistep",
                                                        "trainer.milestones=[0.5,0.8]", "trainer.gamma=0.1"))
    assert rec["optimizer"]["milestone_steps"] == [25, 40]  # fractions of the whole schedule: 0.5 x 50, 0.8 x 50
    want = [(s + 1) / W if s < W else 1.0 if s < 25 else 0.1 if s < 40 else 0.01 for s in range(T)]
    for group, base in BASE.items():
        assert [lr[group] for lr in seen] == pytest.approx([base * f for f in want], rel=1e-12, abs=0), group
