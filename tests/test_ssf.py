"""SSF: identity at init, closed-form counts, per-channel on every layout."""
from __future__ import annotations

import pytest
import torch

from apbench import methods
from apbench.models.layers import block_points

from conftest import TINY, tiny_model

# placement=blocks: tiny_resnet blocks out 64,128,256,512 channels -> 2×960; head 5130.
# tiny_vit 2 blocks × width 32 -> 2×2×32; qkv out 96, fc1 out 128; head 330.
# placement=reference (the default): tiny_resnet BasicBlocks conv1, bn1, conv2, bn2 (+ downsample conv, bn
# from stage 2 on): 4×64 + 6×128 + 6×256 + 6×512 = 5632 channels; tiny_vit per block norm1 32, qkv 96,
# proj 32, norm2 32, fc1 128, fc2 32 = 352, × 2 blocks + the final norm 32 = 736.
REFERENCE = [("resnet", 2 * 5632 + 5130), ("vit", 2 * 736 + 330)]
COUNTS = [
    ("resnet", {}, 2 * (64 + 128 + 256 + 512) + 5130),
    ("resnet", {"layers": [0, 1]}, 2 * (64 + 64) + 5130),
    ("vit", {}, 2 * 2 * 32 + 330),
    ("vit", {"layers": ["blocks.0.attn.qkv:output", "blocks.0.mlp.fc1:output"]}, 2 * (96 + 128) + 330),
]


@pytest.mark.parametrize("family,kwargs,expected", COUNTS)
def test_trainable_counts_match_closed_form(family, kwargs, expected):
    model = tiny_model(family)
    adapted = methods.apply(model, "ssf", input_size=(3, 32, 32), placement="blocks", **kwargs)
    assert sum(p.numel() for p in adapted.trainable()) == expected
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert adapted.inserted == expected - sum(p.numel() for p in model.get_classifier().parameters())


@pytest.mark.parametrize("family,expected", REFERENCE)
def test_reference_placement_counts(family, expected):
    model = tiny_model(family)
    adapted = methods.apply(model, "ssf", input_size=(3, 32, 32))
    assert sum(p.numel() for p in adapted.trainable()) == expected
    assert adapted.info["placement"] == "reference" and adapted.info["init"] == "normal"


@pytest.mark.parametrize("family", list(TINY))
def test_reference_init_is_near_identity_and_identity_init_exact(family):
    torch.manual_seed(0)
    model = tiny_model(family).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    adapted = methods.apply(model, "ssf", input_size=(3, 32, 32))          # N(1, 0.02) / N(0, 0.02)
    scales = torch.cat([op.scale.flatten() for op in model.apbench_ssf.values()])
    assert 0.9 < scales.min() and scales.max() < 1.1 and not torch.all(scales == 1)
    adapted.remove()
    model2 = tiny_model(family).eval()
    adapted2 = methods.apply(model2, "ssf", input_size=(3, 32, 32), init="identity")
    with torch.no_grad():
        assert torch.equal(adapted2.eval().logits(x), before)


@pytest.mark.parametrize("family", list(TINY))
def test_identity_init_leaves_logits_bit_identical(family):
    model = tiny_model(family).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    every = [p.key for p in block_points(model)]  # stem and every block
    adapted = methods.apply(model, "ssf", input_size=(3, 32, 32), layers=every, placement="blocks", init="identity")
    with torch.no_grad():
        assert torch.equal(adapted.eval().logits(x), before)


def test_swin_scale_is_per_channel_on_the_last_dim():
    model = tiny_model("swin")
    methods.apply(model, "ssf", input_size=(3, 32, 32), layers=[1, 2], placement="blocks")
    assert [tuple(op.scale.shape) for op in model.apbench_ssf.values()] == [(16,), (32,)]  # NHWC blocks
