"""Recipes (issue 14): every method's YAML carries its reference recipe and search space; trainer keys
left null take the recipe, a user's value wins; the optimizer and schedule are what the record says."""
import pytest
import torch
from omegaconf import OmegaConf

from apbench import recipes
from apbench.engine.optim import group_lrs, make_scheduler
from apbench.validate import ConfigError
from conftest import CONF, compose

METHOD_YAMLS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))


def _recipe_from_file(name: str) -> dict:
    """The recipe as the YAML files state it (a child file's keys over its parent's), read without apbench."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "method" / f"{name}.yaml"))
    parent = [d for d in raw.get("defaults", []) if isinstance(d, str) and d != "_self_"]
    base = _recipe_from_file(parent[0]) if parent else {}
    return base | (raw.get("recipe") or {})


@pytest.mark.parametrize("name", METHOD_YAMLS)
def test_each_recipe_composes_and_fills_the_trainer(name):
    file_recipe = _recipe_from_file(name)
    assert file_recipe.get("reference"), f"{name}.yaml names no reference (or 'none (declared space ...)')"
    cfg = recipes.resolve(compose(f"method={name}"))
    t = cfg.trainer
    for key in ("optimizer", "lr", "weight_decay", "epochs", "batch_size", "scheduler", "lr_scaling"):
        assert t[key] == file_recipe[key], key
    assert t.head_lr == file_recipe.get("head_lr", file_recipe["lr"])
    assert t.warmup_epochs == pytest.approx(file_recipe["warmup"] * file_recipe["epochs"])
    assert "space" not in cfg.method and cfg.method.recipe.epochs == file_recipe["epochs"]


def test_a_value_the_user_sets_wins_and_warmup_stays_a_fraction():
    cfg = recipes.resolve(compose("method=vpt", "trainer.lr=0.5", "trainer.epochs=20"))
    assert cfg.trainer.lr == 0.5 and cfg.trainer.optimizer == "sgd"          # lr from the user, the rest VPT's
    assert cfg.trainer.warmup_epochs == pytest.approx(2.0)                   # 10 of 100 epochs -> 2 of 20
    assert recipes.epochs_info(cfg) == {"epochs_reference": 100, "epochs_used": 20}
    assert recipes.resolve(compose("method=vpt", "trainer.warmup_epochs=0")).trainer.warmup_epochs == 0
    # Resolving twice changes nothing.
    assert OmegaConf.to_container(recipes.resolve(cfg)) == OmegaConf.to_container(cfg)


def test_a_method_without_a_recipe_value_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"trainer.lr is null .* set trainer.lr=\.\.\. or add it to the recipe"):
        recipes.resolve(compose("method=ap", "~method.recipe.lr"))


@pytest.mark.parametrize("override, expected", [
    ("method.lr_scale={prompt: 10}", {"prompt": 10, "head": 1.0}),                 # AP's YAML comment
    ("method.lr_scale={backbone: 0.1}", {"backbone": 0.1, "head": 1.0}),           # the README's full_ft example
])
def test_the_documented_lr_scale_syntax_composes(override, expected):
    method = "full_ft" if "backbone" in override else "ap"
    assert OmegaConf.to_container(compose(f"method={method}", override).method.lr_scale) == expected


def test_group_lrs_head_apart_scaled_and_batch_rule():
    groups = {"prompt": [], "head": []}
    # VP: the prompt at 40, the head at its own 0.01; lr_scale multiplies; linear rule x batch/256.
    assert group_lrs(groups, 40.0, 0.01) == {"prompt": 40.0, "head": 0.01}
    assert group_lrs(groups, 40.0, 0.01, {"prompt": 0.5}) == {"prompt": 20.0, "head": 0.01}
    assert group_lrs(groups, 2.5, None, factor=128 / 256) == {"prompt": 1.25, "head": 1.25}
    with pytest.raises(ValueError, match=r"lr_scale names group\(s\) \['bogus'\]"):
        group_lrs(groups, 1.0, None, {"bogus": 2.0})


def test_multistep_schedule_at_fractions_of_the_run():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make_scheduler(opt, "multistep", total_steps=10, warmup_steps=0, milestones=[0.5, 0.72], gamma=0.1)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # Milestones at steps round(5.0) = 5 and round(7.2) = 7, as ILM-VP's 50 % and 72 %.
    assert seen == pytest.approx([1, 1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.01])


@pytest.mark.parametrize("method, extra, expect", [
    # linear probe: SGD, VPT's per-256 lr 0.25 at batch 8 -> 0.25 * 8 / 256; 2 epochs x 5 steps, warm-up 10 %
    # (trainer=fast sets warm-up 0; null hands it back to the recipe).
    ("linear_probe", ["trainer.warmup_epochs=null"], {"name": "sgd", "groups": {"head": 0.25 * 8 / 256}, "momentum": 0.9, "scheduler": "cosine",
                          "warmup_steps": 1, "total_steps": 10, "milestone_steps": [], "weight_decay": 1e-4}),
    # a 5-step warm-up (1 of 2 epochs) scales the lr at the first step; the record keeps the lr it starts from
    ("linear_probe", ["trainer.warmup_epochs=1"], {"name": "sgd", "groups": {"head": 0.25 * 8 / 256}, "warmup_steps": 5,
                                                   "total_steps": 10}),
    # ILM-VP: Adam 0.01 on the program only (frozen source head), multi-step at 50 % and 72 % of 10 steps.
    ("vp_ilm", ["method.inner_size=16"], {"name": "adam", "groups": {"prompt": 0.01}, "momentum": None,
                                          "scheduler": "multistep", "warmup_steps": 0, "total_steps": 10,
                                          "milestone_steps": [5, 7], "gamma": 0.1, "weight_decay": 0.0}),
])
def test_the_record_states_the_optimizer_and_schedule_the_recipe_gives(tiny_overrides, method, extra, expect):
    from apbench.run import run
    rec = run(compose(*tiny_overrides, f"method={method}", *extra, "trainer.epochs=2",
                      "trainer.measure_efficiency=false"))
    assert rec["status"] == "ok", rec["error"]
    got = rec["optimizer"]
    for key, value in expect.items():
        assert got[key] == (pytest.approx(value) if key == "groups" else value), key
    assert rec["hparams"]["epochs_used"] == 2 and rec["hparams"]["epochs_reference"] == _recipe_from_file(method)["epochs"]
