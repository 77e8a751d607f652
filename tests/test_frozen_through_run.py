"""Through the real runner (``run()``: build, train, evaluate, measure, record), every frozen weight and
every buffer (BatchNorm running statistics) of a frozen-backbone method is bit-identical afterwards,
while what it trains has moved (issue 16, item 7). Full fine-tuning is the control that the check sees
a change when there is one."""
from __future__ import annotations

import pytest
import torch

from apbench import cell
from apbench.run import run
from conftest import compose

FROZEN_BACKBONE = {  # method -> (model, extra overrides)
    "ap": ("tiny_resnet", ()), "vp": ("tiny_resnet", ("method.pad_width=4",)), "vpt": ("tiny_vit", ()),
    "lora": ("tiny_resnet", ()), "adapter": ("tiny_resnet", ()), "norm_tuning": ("tiny_resnet", ()),
    "bitfit": ("tiny_resnet", ()), "ssf": ("tiny_resnet", ()), "linear_probe": ("tiny_resnet", ()),
}


def _run_and_snapshot(monkeypatch, tmp_path, method, model, *extra):
    """Run one cell; return (the model as trained, its state right after the method was applied)."""
    seen = {}
    adapt = cell.adapt

    def spy(net, *args, **kwargs):
        adapted, head = adapt(net, *args, **kwargs)
        seen["model"] = net
        seen["frozen"] = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad}
        seen["trainable"] = {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}
        seen["buffers"] = {n: b.clone() for n, b in net.named_buffers()}
        return adapted, head

    monkeypatch.setattr(cell, "adapt", spy)
    # prefix cache off: the frozen prefix runs in every training forward, where BN could update its stats
    rec = run(compose("dataset=fmnist_tiny", "trainer=fast", "device=cpu", f"paths.root_dir={tmp_path}",
                      f"model={model}", f"method={method}", "trainer.prefix_cache=off", "trainer.epochs=2", *extra))
    assert rec["status"] == "ok", rec["error"]
    return seen


def _changed(before: dict, model) -> list[str]:
    now = dict(model.named_parameters()) | dict(model.named_buffers())
    return sorted(n for n, t in before.items() if not torch.equal(now[n], t))


@pytest.mark.parametrize("method", list(FROZEN_BACKBONE))
def test_frozen_weights_and_buffers_are_bit_identical_after_run(method, monkeypatch, tmp_path):
    model, extra = FROZEN_BACKBONE[method]
    seen = _run_and_snapshot(monkeypatch, tmp_path, method, model, *extra)
    net = seen["model"]
    assert seen["frozen"] and _changed(seen["frozen"], net) == []
    if model == "tiny_resnet":  # BatchNorm running statistics are there to be kept
        assert any(n.endswith("running_mean") for n in seen["buffers"])
    assert _changed(seen["buffers"], net) == []
    assert _changed(seen["trainable"], net) != []  # it did train


def test_full_finetuning_moves_weights_and_running_stats_the_check_would_see(monkeypatch, tmp_path):
    seen = _run_and_snapshot(monkeypatch, tmp_path, "full_ft", "tiny_resnet")
    moved = _changed(seen["buffers"], seen["model"])
    assert any(n.endswith("running_mean") for n in moved)
    assert "conv1.weight" in _changed(seen["trainable"], seen["model"])
