"""The reference details of issue 14: AdaptFormer's dropout, Houlsby's adapters, ILM-VP's bounded program."""
import pytest
import torch
from omegaconf import OmegaConf

from apbench import methods
from apbench.methods import MethodError
from apbench.methods.adapters import Bottleneck
from conftest import compose, tiny_model


def _method_args(name):
    m = OmegaConf.to_container(compose(f"method={name}").method, resolve=True)
    return {k: v for k, v in m.items() if k not in ("name", "head", "lr_scale", "recipe", "space")}


def test_adaptformer_dropout_runs_while_training_with_the_backbone_frozen_in_eval():
    model = tiny_model("vit")
    adapted = methods.apply(model, "adapter", input_size=(3, 32, 32), **_method_args("adaptformer"))
    bottlenecks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(bottlenecks) == 2 and all(b.drop.p == 0.1 and b.scale == 0.1 for b in bottlenecks)
    adapted.train()
    assert all(b.training for b in bottlenecks) and not model.blocks[0].attn.training
    adapted.eval()
    assert not any(b.training for b in bottlenecks)


def test_houlsby_gelu_near_zero_init_and_trained_layernorms():
    model = tiny_model("vit")                            # 2 blocks, width 32, head 330
    adapted = methods.apply(model, "adapter", input_size=(3, 32, 32), **_method_args("houlsby"))
    bottlenecks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(bottlenecks) == 4 and all(isinstance(b.act, torch.nn.GELU) for b in bottlenecks)
    for b in bottlenecks:
        for w in (b.down.weight, b.up.weight):           # truncated N(0, 1e-3) at +-2 std
            assert 0 < w.abs().max() <= 2e-3
    # adapters 4 x (32*64 + 64 + 64*32 + 32) + LayerNorms 2 blocks x 2 x (32 + 32) + head 330
    assert sum(p.numel() for p in adapted.trainable()) == 4 * 4192 + 256 + 330
    assert adapted.inserted == 4 * 4192 and adapted.info["norms_trained"] == 256


def test_train_norms_is_houlsby_only():
    with pytest.raises(MethodError, match="variant=sequential"):
        methods.apply(tiny_model("vit"), "adapter", input_size=(3, 32, 32), variant="parallel", train_norms=True)


def test_ilm_vp_program_is_sigmoid_bounded_in_pixel_space():
    model = tiny_model("resnet")
    model.pretrained_cfg = dict(model.pretrained_cfg, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    methods.apply(model, "vp", input_size=(3, 32, 32), variant="expansive", inner_size=16, init="zeros",
                  bound="sigmoid")
    out = model.apbench_vp(torch.zeros(1, 3, 32, 32))
    # At init the surround is sigmoid(0) = 0.5 in pixel space, normalized: (0.5 - mean) / std.
    expected = torch.tensor([(0.5 - 0.5) / 0.2, (0.5 - 0.4) / 0.25, (0.5 - 0.3) / 0.5])
    assert torch.allclose(out[0, :, 0, 0], expected) and torch.allclose(out[0, :, -1, -1], expected)
    assert torch.equal(out[0, :, 8:24, 8:24], torch.zeros(3, 16, 16))   # the (black) image is untouched
    with torch.no_grad():
        model.apbench_vp.frame.top.fill_(1e4)                 # any program stays inside [0, 1] pixels
    top = model.apbench_vp(torch.zeros(1, 3, 32, 32))[0, :, 0, 0]
    assert torch.allclose(top, (1.0 - torch.tensor([0.5, 0.4, 0.3])) / torch.tensor([0.2, 0.25, 0.5]))
    with pytest.raises(MethodError, match="variant=expansive"):
        methods.apply(tiny_model("resnet"), "vp", input_size=(3, 32, 32), variant="pad", pad_width=4, bound="sigmoid")


def test_vp_pad_randn_init_as_bahng():
    torch.manual_seed(0)
    model = tiny_model("resnet")
    methods.apply(model, "vp", input_size=(3, 32, 32), variant="pad", pad_width=4, init="randn")
    frame = torch.cat([p.flatten() for p in model.apbench_vp.parameters()])
    assert frame.numel() == 3 * (32 * 32 - 24 * 24) and 0.8 < frame.std().item() < 1.2


def test_lora_on_q_and_v_as_separate_targets():
    model = tiny_model("vit").eval()                     # 2 blocks, width 32, head 330
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    adapted = methods.apply(model, "lora", input_size=(3, 32, 32), targets=["q", "v"], r=4, alpha=8)
    # 2 blocks x 2 parts x (A 4x32 + B 32x4) + head
    assert sum(p.numel() for p in adapted.trainable()) == 2 * 2 * 256 + 330
    with torch.no_grad():
        assert torch.equal(adapted.eval().logits(x), before)          # B = 0: the frozen model
        lora = model.apbench_qkv_lora["1"]
        lora.B["v"].fill_(0.1)
        qkv = model.blocks[0].attn.qkv
        inp = torch.randn(1, 5, 32)
        out, base = qkv(inp), torch.nn.functional.linear(inp, qkv.weight, qkv.bias)
    assert torch.equal(out[..., :64], base[..., :64])                  # q and k untouched by v's update
    assert not torch.allclose(out[..., 64:], base[..., 64:])
    with pytest.raises(MethodError, match="cannot be merged"):
        methods.apply(tiny_model("vit"), "lora", input_size=(3, 32, 32), targets=["q", "v"], merge=True)
