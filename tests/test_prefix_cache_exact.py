"""The prefix cache through its public path (``prefix_cache.prepare`` then ``active``) gives the logits and
the gradients of the uncached model, bit for bit, with a non-zero prompt, on every family.

A zero prompt would hide a cache that captured the activation after the prompt's hook (the prompt then
counted twice, or its gradient lost): the prompt here is random and large."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from apbench import methods
from apbench.engine import prefix_cache

from conftest import TINY, tiny_model

SIZE = (3, 32, 32)
N = 8  # one batch, built and trained at the same size: the same kernels run in both


def _loss_and_grads(adapted, x, y):
    adapted.train()
    for p in adapted.trainable():
        p.grad = None
    logits = adapted.logits(x)
    F.cross_entropy(logits, y).backward()
    return logits.detach(), [p.grad.clone() for p in adapted.trainable()]


@pytest.mark.parametrize("family", sorted(TINY))
def test_cached_and_uncached_logits_and_gradients_are_identical(family):
    torch.manual_seed(1)
    adapted = methods.apply(tiny_model(family), "ap", input_size=SIZE, layers=[2], init="normal")
    [prompt] = adapted.param_groups["prompt"]
    with torch.no_grad():
        prompt.normal_(0, 2.0)  # far from zero: a prompt applied twice or never moves every logit
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(N, *SIZE, generator=g), torch.randint(0, 10, (N,), generator=g)
    plain_logits, plain_grads = _loss_and_grads(adapted, x, y)

    cache = prefix_cache.prepare(adapted, {"train": TensorDataset(x, y)}, deterministic=True, input_size=SIZE,
                                 batch_size=N)
    assert cache.used and cache.info["point"] == "2", cache.info  # cached up to the prompted block itself
    acts, labels = cache.sets["train"].tensors
    assert torch.equal(labels, y)
    with cache.active(adapted):
        cached_logits, cached_grads = _loss_and_grads(adapted, acts, labels)
    assert torch.equal(cached_logits, plain_logits)
    assert len(cached_grads) == len(plain_grads) and all(g.abs().sum() > 0 for g in plain_grads[:1])
    for a, b in zip(cached_grads, plain_grads):
        assert torch.equal(a, b)
