"""Every prompt/norm method trains one step on every family; nothing frozen moves, buffers included."""
from __future__ import annotations

import pytest
import torch

from apbench import methods
from apbench.engine.optim import make_optimizer

from conftest import TINY, compose, tiny_model

CASES = {
    "ap": {"layers": [1]},
    "vp": {"variant": "pad", "pad_width": 4},
    "norm_tuning": {},
    "bitfit": {},
    "ssf": {},
}


@pytest.mark.parametrize("family", list(TINY))
@pytest.mark.parametrize("name", list(CASES))
def test_one_step_moves_only_the_trainable_set(name, family):
    model = tiny_model(family)
    head = methods.setup_head(model, "linear", 4)
    adapted = head.attach(methods.apply(model, name, input_size=(3, 32, 32), head_prefixes=head.prefixes,
                                        **CASES[name]))
    assert adapted.bn_mode == "eval"  # every method here keeps the source BN statistics
    trainable = {id(p) for p in adapted.trainable()}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if id(p) not in trainable}
    assert all(not model.get_parameter(n).requires_grad for n in frozen)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    before = {id(p): p.detach().clone() for p in adapted.trainable()}

    opt = make_optimizer(adapted.param_groups, "adamw", 1e-2, 0.0)
    adapted.train()
    loss = torch.nn.functional.cross_entropy(adapted.logits(torch.randn(4, 3, 32, 32)), torch.arange(4))
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()

    for group, params in adapted.param_groups.items():
        if params:
            assert any(not torch.equal(p, before[id(p)]) for p in params), f"group {group} did not move"
    for n, v in frozen.items():
        assert torch.equal(model.get_parameter(n), v), n
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n


@pytest.mark.parametrize("name", ["ap", "vp", "norm_tuning", "bitfit", "ssf", "linear_probe", "full_ft"])
def test_every_method_config_defaults_to_the_linear_head_and_validates(name, tiny_overrides):
    from apbench.validate import validate

    over = ["method.pad_width=4"] if name == "vp" else []
    cfg = compose(*tiny_overrides, f"method={name}", *over)
    assert cfg.method.head == "linear"
    validate(cfg)


@pytest.mark.parametrize("overrides", [
    ["method=vp", "method.pad_width=4", "method.head=flm"],
    ["method=vp", "method.variant=expansive", "method.inner_size=24", "method.head=random"],
    ["method=norm_tuning"],
    ["method=bitfit"],
    ["method=ssf", "model=tiny_vit"],
])
def test_runs_end_to_end_and_records_head_and_bn_mode(overrides, tiny_overrides):
    from apbench.run import run

    rec = run(compose(*tiny_overrides, *overrides))
    assert rec["status"] == "ok", rec["error"]
    assert rec["bn_mode"] == "eval"
    head = next((o.split("=")[1] for o in overrides if o.startswith("method.head=")), "linear")
    assert rec["head"] == head
    assert (rec["label_map"] is None) == (head == "linear")
