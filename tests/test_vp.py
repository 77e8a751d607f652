"""Visual prompting at the input: pad border, expansive surround, full additive prompt."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from apbench import methods

from conftest import TINY, compose, tiny_model


def _seen_by_model(adapted, x):
    """The tensor the backbone receives, after the VP pre-hook (a later pre-hook runs after it)."""
    seen = {}
    h = adapted.model.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0].detach().clone()))
    try:
        with torch.no_grad():
            adapted.eval().logits(x)
    finally:
        h.remove()
    return seen["x"]


def _randomize(model):
    with torch.no_grad():
        for p in model.apbench_vp.parameters():
            p.normal_()


@pytest.mark.parametrize("family", list(TINY))
def test_pad_prompt_changes_only_the_border(family):
    model = tiny_model(family)
    adapted = methods.apply(model, "vp", input_size=(3, 32, 32), variant="pad", pad_width=4)
    _randomize(model)
    x = torch.randn(2, 3, 32, 32)
    out = _seen_by_model(adapted, x)
    assert out.shape == x.shape
    assert torch.equal(out[..., 4:28, 4:28], x[..., 4:28, 4:28])  # centre bit-identical
    border = torch.ones(32, 32, dtype=torch.bool)
    border[4:28, 4:28] = False
    assert (out != x)[..., border].all()  # every border pixel moved (additively, Bahng et al.)
    # Hand-built: each strip of the frame holds its own constant, so a strip in the wrong place shows.
    frame = model.apbench_vp.frame
    with torch.no_grad():
        for value, strip in enumerate((frame.top, frame.bottom, frame.left, frame.right), 1):
            strip.fill_(float(value))
    expected = torch.zeros(3, 32, 32)
    expected[:, :4, :] = 1.0       # top rows, full width
    expected[:, 28:, :] = 2.0      # bottom rows, full width
    expected[:, 4:28, :4] = 3.0    # left columns between them
    expected[:, 4:28, 28:] = 4.0   # right columns
    assert torch.equal(_seen_by_model(adapted, x), x + expected)


def test_expansive_puts_the_resized_image_in_the_centre_of_a_learnable_surround():
    model = tiny_model("vit")
    adapted = methods.apply(model, "vp", input_size=(3, 32, 32), variant="expansive", inner_size=20)
    _randomize(model)
    x = torch.randn(2, 3, 32, 32)
    out = _seen_by_model(adapted, x)
    assert out.shape == (2, 3, 32, 32)  # the model's canvas
    small = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(out[..., 6:26, 6:26], small)
    frame = model.apbench_vp.frame()
    surround = torch.ones(32, 32, dtype=torch.bool)
    surround[6:26, 6:26] = False
    assert torch.equal(out[..., surround], frame.expand_as(out)[..., surround])  # the image does not reach it
    assert adapted.info["inner_size"] == [20, 20]


def test_expansive_with_an_odd_margin_and_rectangular_inner_size():
    model = tiny_model("resnet")
    adapted = methods.apply(model, "vp", input_size=(3, 32, 32), variant="expansive", inner_size=[21, 16])
    assert adapted.inserted == 3 * (32 * 32 - 21 * 16)
    out = _seen_by_model(adapted, torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32)


def test_full_variant_equals_ap_at_input():
    vp, ap = tiny_model("convnext"), tiny_model("convnext")
    a_vp = methods.apply(vp, "vp", input_size=(3, 32, 32), variant="full")
    a_ap = methods.apply(ap, "ap", input_size=(3, 32, 32), layers=["input"])
    _randomize(vp)
    with torch.no_grad():
        next(ap.apbench_prompts.parameters()).copy_(vp.apbench_vp.prompt)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a_vp.eval().logits(x), a_ap.eval().logits(x))


# Closed-form prompt sizes; tiny resnet head fc: 512*10+10 = 5130.
@pytest.mark.parametrize("size,kwargs,prompt", [
    (32, {"variant": "pad", "pad_width": 4}, 3 * (32 * 32 - 24 * 24)),          # 1344
    (224, {"variant": "pad", "pad_width": 30}, 3 * (224 * 224 - 164 * 164)),    # 69,840 (Bahng et al.)
    (32, {"variant": "expansive", "inner_size": 20}, 3 * (32 * 32 - 20 * 20)),  # 1872
    (32, {"variant": "full"}, 3 * 32 * 32),
])
def test_prompt_counts_match_closed_form(size, kwargs, prompt):
    model = tiny_model("resnet")
    adapted = methods.apply(model, "vp", input_size=(3, size, size), **kwargs)
    assert adapted.inserted == prompt
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == prompt + 5130
    assert [p.key for p in adapted.points] == ["input"] and adapted.bn_mode == "eval"


def test_bad_sizes_are_refused_clearly():
    with pytest.raises(methods.MethodError, match="pad_width=16"):
        methods.apply(tiny_model("resnet"), "vp", input_size=(3, 32, 32), variant="pad", pad_width=16)
    with pytest.raises(methods.MethodError, match="inner_size=40"):
        methods.apply(tiny_model("resnet"), "vp", input_size=(3, 32, 32), variant="expansive", inner_size=40)
    with pytest.raises(methods.MethodError, match="variant"):
        methods.apply(tiny_model("resnet"), "vp", input_size=(3, 32, 32), variant="ring")


def test_vp_config_composes_and_validates(tiny_overrides):
    from apbench.validate import ConfigError, validate

    validate(compose(*tiny_overrides, "method=vp", "method.pad_width=4", "method.head=flm"))
    validate(compose(*tiny_overrides, "method=vp", "method.variant=expansive", "method.inner_size=24"))
    with pytest.raises(ConfigError, match="pad_width=30"):  # the 224-px default does not fit 32 px
        validate(compose(*tiny_overrides, "method=vp"))
