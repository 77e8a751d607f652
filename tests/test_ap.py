"""Activation prompt: exactness at zero, locality, closed-form sizes, and its link to norm-layer biases."""
from __future__ import annotations

import copy

import pytest
import torch

from apbench import methods
from apbench.models.layers import block_points, register_point_hook, resolve_layers

from conftest import TINY, tiny_model

FAMILIES = list(TINY)


def _x(n=2, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


def _prompts(model):
    return list(model.apbench_prompts.parameters())


@pytest.mark.parametrize("shape", ["full", "channel"])
@pytest.mark.parametrize("family", FAMILIES)
def test_zero_prompt_at_every_point_leaves_logits_bit_identical(family, shape):
    model = tiny_model(family).eval()
    x = _x()
    with torch.no_grad():
        before = model(x)
    every = ["input"] + [p.key for p in block_points(model)]
    adapted = methods.apply(model, "ap", input_size=(3, 32, 32), layers=every, shape=shape)
    assert len(_prompts(model)) == len(every)
    with torch.no_grad():
        after = adapted.eval().logits(x)
    assert torch.equal(before, after)


def _capture(model, keys):
    seen = {}
    hooks = []
    for p in resolve_layers(model, keys):
        def grab(t, key=p.key):
            seen[key] = t.detach().clone()
            return t
        hooks.append(register_point_hook(model, p, grab))
    return seen, hooks


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_at_point_k_leaves_every_earlier_activation_bit_identical(family):
    plain = tiny_model(family).eval()
    keys = ["input"] + [p.key for p in block_points(plain)]
    k = len(keys) // 2  # a middle block point
    prompted = tiny_model(family)
    methods.apply(prompted, "ap", input_size=(3, 32, 32), layers=[keys[k]], shape="full", init="normal")
    with torch.no_grad():
        for p in _prompts(prompted):
            p.normal_()  # large enough to move every later activation
    prompted.eval()
    ref, _ = _capture(plain, keys)
    got, _ = _capture(prompted, keys)  # registered after the prompt hook: sees the prompted tensor
    x = _x()
    with torch.no_grad():
        plain(x), prompted(x)
    for i, key in enumerate(keys):
        same = torch.equal(ref[key], got[key])
        assert same == (i < k), f"point {key}: {'changed' if not same else 'unchanged'} with the prompt at {keys[k]}"


# Closed-form trainable counts at 32 px, 10 classes. Heads: resnet fc 512*10+10 = 5130, vit head 32*10+10 = 330,
# swin head.fc 32*10+10 = 330, convnext head.fc 64*10+10 = 650, Lite0 classifier 1280*10+10 = 12810.
COUNTS = [
    ("resnet", ["input"], "full", 3 * 32 * 32 + 5130),          # pixels 3×32×32
    ("resnet", [2], "full", 128 * 4 * 4 + 5130),                # layer2.0 out: 128×4×4
    ("resnet", [0, 4], "channel", 64 + 512 + 5130),             # maxpool out 64 ch, layer4.0 out 512 ch
    ("resnet", ["layer1.0.bn1:input"], "channel", 64 + 5130),
    ("vit", [0], "full", 17 * 32 + 330),                        # 16 patches + class token, width 32
    ("vit", [-1], "channel", 32 + 330),
    ("swin", [1], "full", 8 * 8 * 16 + 330),                    # NHWC 8×8×16
    ("swin", [2], "channel", 32 + 330),
    ("convnext", [1], "full", 8 * 8 * 8 + 650),
    ("convnext", ["stages.0.blocks.0.mlp:output"], "channel", 8 + 650),  # block MLP: 8 channels out
    ("efficientnet", [2], "full", 24 * 8 * 8 + 2570),          # test_efficientnet: head 256×10 + 10
    ("efficientnet", [0, "blocks.1.0.bn1:input"], "channel", 24 + 64 + 2570),  # stem 24 ch; edge block 16→64
]


@pytest.mark.parametrize("family,layers,shape,expected", COUNTS)
def test_trainable_counts_match_closed_form(family, layers, shape, expected):
    model = tiny_model(family)
    adapted = methods.apply(model, "ap", input_size=(3, 32, 32), layers=layers, shape=shape)
    assert sum(p.numel() for p in adapted.trainable()) == expected
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert adapted.inserted == sum(p.numel() for p in _prompts(model))
    assert adapted.bn_mode == "eval"


@pytest.mark.parametrize("conv_mlp,expected", [(True, (8, 1, 1)), (False, (8,))])
def test_channel_prompt_follows_the_layout_inside_a_convnext_block(conv_mlp, expected):
    import timm

    model = timm.create_model("convnext_atto", depths=[1, 1, 1, 1], dims=[8, 16, 32, 64], conv_mlp=conv_mlp,
                              num_classes=10).eval()
    x = _x()
    with torch.no_grad():
        plain = model(x)
    for where in ("stages.0.blocks.0.norm:output", "stages.0.blocks.0.mlp:input"):
        m = copy.deepcopy(model)
        ad = methods.apply(m, "ap", input_size=(3, 32, 32), layers=[where], shape="channel")
        (p,) = _prompts(m)
        # conv_mlp=True keeps NCHW (LayerNorm2d, 1×1 convs); False permutes to NHWC around norm and MLP.
        assert p.shape == expected
        with torch.no_grad():
            p.normal_()
            assert not torch.equal(ad.eval().logits(x), plain)


# --- the norm link -------------------------------------------------------------------------------
# BN(x + a) = gamma * (x + a - mean) / sqrt(var + eps) + beta = BN(x) + gamma * a / sqrt(var + eps):
# a per-channel prompt at a frozen BN's input is the bias shift  delta = gamma * a / sqrt(var + eps),
# and a bias shift delta is the prompt  a = delta * sqrt(var + eps) / gamma  (gamma != 0).

def _bn_link(model, bn_path, x, atol):
    model = model.to(x.dtype)
    bn = model.get_submodule(bn_path)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    base = copy.deepcopy(model).eval()
    with torch.no_grad():
        plain = base(x)

    # AP -> bias shift
    a = torch.randn(bn.num_features, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    prompted = copy.deepcopy(model)
    # probe_shapes feeds a float32 probe, so apply in float32 and convert after (hooks keep the same Parameter).
    ad = methods.apply(prompted.float(), "ap", input_size=tuple(x.shape[1:]), layers=[f"{bn_path}:input"],
                       shape="channel")
    prompted.to(x.dtype)
    (p,) = _prompts(prompted)
    assert p.shape == (bn.num_features, 1, 1)
    shifted = copy.deepcopy(model).eval()
    with torch.no_grad():
        p.copy_(a.view(-1, 1, 1))
        shifted.get_submodule(bn_path).bias += scale * a
        y_ap, y_bias = ad.eval().logits(x), shifted(x)
    assert (y_ap - plain).abs().max() > 100 * atol, "the prompt must actually move the logits"
    torch.testing.assert_close(y_ap, y_bias, atol=atol, rtol=0)

    # bias shift -> AP
    delta = 0.5 * torch.randn(bn.num_features, generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    shifted = copy.deepcopy(model).eval()
    with torch.no_grad():
        shifted.get_submodule(bn_path).bias += delta
        p.copy_((delta / scale).view(-1, 1, 1))
        y_bias, y_ap = shifted(x), ad.eval().logits(x)
    assert (y_bias - plain).abs().max() > 100 * atol
    torch.testing.assert_close(y_ap, y_bias, atol=atol, rtol=0)


def test_channel_prompt_before_frozen_batchnorm_is_a_bias_shift_tiny_resnet():
    model = tiny_model("resnet").eval()
    bn = model.layer1[0].bn2  # timm zero-inits this gamma (zero_init_last); randomized below
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():  # non-trivial statistics and affine parameters
        bn.weight.copy_(0.5 + torch.rand(64, generator=g))
        bn.bias.copy_(torch.randn(64, generator=g))
        bn.running_mean.copy_(torch.randn(64, generator=g))
        bn.running_var.copy_(0.5 + torch.rand(64, generator=g))
    _bn_link(model, "layer1.0.bn2", _x(), atol=1e-5)


def test_channel_prompt_before_frozen_batchnorm_is_a_bias_shift_pretrained_lite0():
    from apbench.models.factory import build_model

    built = build_model({"name": "tf_efficientnet_lite0", "weights": "bundled", "bundled": "efficientnet_lite0_in1k"})
    # float64: the identity is exact; float32 round-off through 16 blocks alone is ~1e-5 at logits of ~5.
    model = built.model.eval()
    bn = model.get_submodule("blocks.1.0.bn1")
    assert (bn.weight.abs() > 0).all()  # the bias -> prompt direction divides by gamma
    _bn_link(model, "blocks.1.0.bn1", _x(2, 64).double(), atol=1e-5)


def test_token_shared_prompt_after_layernorm_is_a_bias_shift_but_not_before_it():
    model = tiny_model("vit").eval()
    ln = model.blocks[0].norm1
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        ln.weight.copy_(0.5 + torch.rand(32, generator=g))
        ln.bias.copy_(torch.randn(32, generator=g))
    a = torch.randn(32, generator=g)
    x = _x()
    shifted = copy.deepcopy(model).eval()
    with torch.no_grad():
        shifted.blocks[0].norm1.bias += a
        y_bias = shifted(x)

    def prompted_logits(where):
        m = copy.deepcopy(model)
        ad = methods.apply(m, "ap", input_size=(3, 32, 32), layers=[f"blocks.0.norm1:{where}"], shape="channel")
        (p,) = _prompts(m)
        assert p.shape == (32,)  # one vector shared by every token
        with torch.no_grad():
            p.copy_(a)
            return ad.eval().logits(x)

    torch.testing.assert_close(prompted_logits("output"), y_bias, atol=1e-5, rtol=0)
    # At the LN's input the shift is re-normalized per token: no bias shift reproduces it.
    assert (prompted_logits("input") - y_bias).abs().max() > 1e-2
