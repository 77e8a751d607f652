"""Bottleneck adapters: closed-form counts, exact identity at init, the AdaptFormer/Houlsby wiring."""
import pytest
import torch

from apbench.methods import MethodError, apply
from apbench.validate import validate
from conftest import compose
from method_checks import batch, frozen_logits, n_trainable, run_ok, tiny, train_step_keeps_frozen

B = 4  # bottleneck width in these tests


def per_adapter(dim: int, width: int = B) -> int:
    return 2 * dim * width + width + dim  # down W+b, up W+b


@pytest.mark.parametrize("family,variant,expected,head", [
    ("vit", "parallel", 2 * per_adapter(32), 330),            # 2 blocks, D=32
    ("vit", "sequential", 2 * 2 * per_adapter(32), 330),      # attn + mlp adapter per block
    ("swin", "parallel", per_adapter(16) + per_adapter(32), 330),
    ("swin", "sequential", 2 * per_adapter(16) + 2 * per_adapter(32), 330),
    ("resnet", "conv", sum(per_adapter(c) for c in (64, 128, 256, 512)), 5130)])
def test_trainable_count_in_closed_form(family, variant, expected, head):
    m = tiny(family)
    a = apply(m, "adapter", variant=variant, bottleneck=B)
    assert a.inserted == expected
    assert n_trainable(m) == expected + head


def test_fractional_bottleneck_follows_the_stage_width():
    a = apply(tiny("resnet"), "adapter", variant="conv", bottleneck=0.25)
    assert a.inserted == sum(per_adapter(c, c // 4) for c in (64, 128, 256, 512))


def test_auto_picks_parallel_for_transformers_and_conv_for_cnns():
    assert apply(tiny("vit"), "adapter", bottleneck=B).info["variant"] == "parallel"
    assert apply(tiny("convnext"), "adapter", bottleneck=B).info["variant"] == "conv"


CASES = [("vit", "parallel"), ("vit", "sequential"), ("swin", "parallel"), ("swin", "sequential"),
         ("resnet", "conv"), ("convnext", "conv"), ("efficientnet", "conv")]


@pytest.mark.parametrize("family,variant", CASES)
def test_zero_init_is_bit_identical_and_one_step_trains(family, variant):
    x, _ = batch()
    ref = frozen_logits(family, x)
    a = apply(tiny(family), "adapter", variant=variant, bottleneck=B, layers="all")
    a.eval()
    with torch.no_grad():
        assert torch.equal(a.logits(x), ref)
    train_step_keeps_frozen(a)


def _randomize(adapters):
    torch.manual_seed(3)
    for p in adapters.parameters():
        torch.nn.init.normal_(p, std=0.1)


def test_parallel_adds_scaled_adapter_of_the_mlp_residual_input():
    m = tiny("vit").eval()
    blk = m.blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        frozen_out = blk(x)
        mid = x + blk.attn(blk.norm1(x))  # the residual stream the MLP sublayer reads
    a = apply(m, "adapter", variant="parallel", bottleneck=B, layers=[1])
    _randomize(m.apbench_adapters)
    ad = m.apbench_adapters["1"]
    with torch.no_grad():
        expected = frozen_out + 0.1 * ad.up(ad.act(ad.down(mid)))
        torch.testing.assert_close(blk(x), expected)
    assert a.info["scale"] == 0.1


def test_sequential_wraps_each_sublayer_output_with_a_residual_adapter():
    ref = tiny("vit").eval().blocks[1]  # same seed, same weights, no hooks
    m = tiny("vit").eval()
    x = torch.randn(2, 17, 32)
    apply(m, "adapter", variant="sequential", bottleneck=B, layers=[2])
    _randomize(m.apbench_adapters)
    att, mlp = m.apbench_adapters["2_attn"], m.apbench_adapters["2_mlp"]
    f = lambda ad, h: h + ad.up(ad.act(ad.down(h)))
    with torch.no_grad():
        h = x + f(att, ref.attn(ref.norm1(x)))
        expected = h + f(mlp, ref.mlp(ref.norm2(h)))
        torch.testing.assert_close(m.blocks[1](x), expected)


def test_conv_adapter_is_residual_on_the_block_output():
    m = tiny("resnet").eval()
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        y = m.layer1[0](x)
    apply(m, "adapter", variant="conv", bottleneck=B, layers=[1])
    _randomize(m.apbench_adapters)
    ad = m.apbench_adapters["1"]
    with torch.no_grad():
        torch.testing.assert_close(m.layer1[0](x), y + ad.up(ad.act(ad.down(y))))


@pytest.mark.parametrize("family,variant,supported", [
    ("resnet", "parallel", "vit, swin"), ("efficientnet", "sequential", "vit, swin"),
    ("vit", "conv", "efficientnet, resnet, convnext"), ("swin", "conv", "efficientnet, resnet, convnext")])
def test_refuses_variants_on_other_families_naming_the_supported_ones(family, variant, supported):
    with pytest.raises(MethodError, match=f"supports: {supported}"):
        apply(tiny(family), "adapter", variant=variant, bottleneck=B)


@pytest.mark.parametrize("kwargs,msg", [
    ({"variant": "lora"}, "unknown"), ({"layers": [0]}, "not blocks"), ({"bottleneck": 0}, "positive"),
    ({"bottleneck": 1.5}, r"\(0, 1\]")])
def test_bad_arguments_are_refused(kwargs, msg):
    with pytest.raises(MethodError, match=msg):
        apply(tiny("vit"), "adapter", **kwargs)


@pytest.mark.parametrize("model", ["tiny_vit", "tiny_resnet"])
def test_validates_on_the_meta_device(model):
    facts = validate(compose(f"model={model}", "method=adapter", "dataset=fmnist_tiny", "device=cpu"))
    assert facts["points"][0] == "1"


@pytest.mark.parametrize("model,inserted", [("tiny_vit", 2 * per_adapter(32, 8)),
                                            ("tiny_resnet", sum(per_adapter(c, 8) for c in (64, 128, 256, 512)))])
def test_runner_cell(tmp_path, model, inserted):
    assert run_ok(tmp_path, model, "adapter", "method.bottleneck=8")["params"]["inserted"] == inserted
