"""Norm tuning: which parameters train (closed form), and BN statistics that never move."""
from __future__ import annotations

import pytest
import torch

from apbench import methods

from conftest import tiny_model

# tiny_resnet BN channels: stem bn1 64 | layer1.0 bn1,bn2 64+64 | layer2.0 bn1,bn2,downsample 3×128
# | layer3.0 3×256 | layer4.0 3×512  -> 2880 channels, ×2 (gamma, beta); head fc 512*10+10 = 5130.
# tiny_vit LayerNorms (width 32): blocks.{0,1}.norm{1,2} + final norm = 5 -> 5×32×2 = 320; head 32*10+10 = 330.
COUNTS = [
    ("resnet", {}, 2 * 2880 + 5130),
    ("resnet", {"layers": [0]}, 2 * 64 + 5130),                    # point 0 = the whole stem (its bn1)
    ("resnet", {"layers": [2]}, 2 * 3 * 128 + 5130),               # layer2.0: bn1, bn2, downsample BN
    ("resnet", {"layers": ["layer4.0.bn2"]}, 2 * 512 + 5130),      # a module path
    ("resnet", {"kinds": ["layernorm", "groupnorm"], "layers": [1]}, None),  # none there: refused
    ("vit", {}, 5 * 2 * 32 + 330),
    ("vit", {"layers": [1]}, 2 * 2 * 32 + 330),
    ("vit", {"kinds": ["batchnorm"]}, None),
]


@pytest.mark.parametrize("family,kwargs,expected", COUNTS)
def test_trainable_counts_match_closed_form(family, kwargs, expected):
    model = tiny_model(family)
    if expected is None:
        with pytest.raises(methods.MethodError, match="no affine"):
            methods.apply(model, "norm_tuning", **kwargs)
        return
    adapted = methods.apply(model, "norm_tuning", **kwargs)
    assert sum(p.numel() for p in adapted.trainable()) == expected
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert adapted.bn_mode == "eval" and adapted.inserted == 0


def test_unknown_kind_is_refused():
    with pytest.raises(methods.MethodError, match="instancenorm"):
        methods.apply(tiny_model("resnet"), "norm_tuning", kinds=["instancenorm"])


def test_bn_affine_trains_while_running_statistics_stay_bit_identical():
    model = tiny_model("resnet")
    adapted = methods.apply(model, "norm_tuning")
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    gamma = model.layer2[0].bn1.weight.detach().clone()
    opt = torch.optim.SGD(adapted.trainable(), lr=0.1)
    adapted.train()
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(adapted.logits(torch.randn(4, 3, 32, 32)), torch.arange(4))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(model.layer2[0].bn1.weight, gamma)
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n  # running_mean, running_var, num_batches_tracked
