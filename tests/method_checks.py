"""Checks shared by the VPT, LoRA/peft and adapter tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from conftest import tiny_model


def tiny(family: str, num_classes: int = 10) -> torch.nn.Module:
    return tiny_model(family, num_classes)


def batch(n: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def frozen_logits(family: str, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return tiny(family).eval()(x)


def train_step_keeps_frozen(adapted, lr: float = 0.5) -> float:
    """One SGD step on the trainable set; asserts frozen parameters and all buffers did not move,
    that only trainable parameters got gradients, and that the head changed."""
    model = adapted.model
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    trainable = adapted.trainable()
    assert trainable and frozen
    before = [p.detach().clone() for p in trainable]
    opt = torch.optim.SGD(trainable, lr=lr)
    x, y = batch()
    adapted.train()
    loss = F.cross_entropy(adapted.logits(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        if n in frozen:
            assert p.grad is None, n
            assert torch.equal(p, frozen[n]), f"frozen parameter {n} changed"
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), f"buffer {n} changed"
    assert all(p.grad is not None for p in trainable)
    head = {id(p) for p in adapted.param_groups["head"]}
    moved = {id(p) for p, b in zip(trainable, before) if not torch.equal(p, b)}
    assert head <= moved, "the head did not train"
    assert moved - head, "none of the method's own parameters trained"
    return loss.item()


def n_trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run_ok(tmp_path, model: str, method: str, *overrides: str) -> dict:
    """One runner cell (validate on meta, build, train one short epoch, evaluate); asserts status ok."""
    from apbench.run import run
    from conftest import compose

    rec = run(compose(f"model={model}", f"method={method}", "dataset=fmnist_tiny", "trainer=fast", "device=cpu",
                      f"paths.root_dir={tmp_path}", *overrides))
    assert rec["status"] == "ok", rec["error"]
    return rec
