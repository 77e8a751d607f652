"""LoRA and generic peft tuners on timm models: closed-form counts, zero-init identity, frozen backbone."""
import pytest
import torch
from peft import PeftModel

from apbench.cell import count_params
from apbench.methods import MethodError, apply
from apbench.models.layers import block_points, family_of, resolve_layers
from apbench.validate import validate
from conftest import compose
from method_checks import batch, frozen_logits, n_trainable, run_ok, tiny, train_step_keeps_frozen

# tiny_vit per block: qkv 32->96, proj 32->32, fc1 32->128, fc2 128->32; 2 blocks; head 32*10+10.
VIT_HEAD, RESNET_HEAD = 330, 5130


@pytest.mark.parametrize("targets,per_block", [
    (["qkv"], 32 + 96),
    (["qkv", "proj", "fc1", "fc2"], (32 + 96) + (32 + 32) + (32 + 128) + (128 + 32))])
def test_vit_lora_count_is_r_times_in_plus_out_per_linear(targets, per_block):
    m = tiny("vit")
    a = apply(m, "lora", r=4, targets=targets)
    assert a.inserted == 2 * 4 * per_block
    assert n_trainable(m) == 2 * 4 * per_block + VIT_HEAD


@pytest.mark.parametrize("layers,expected", [
    # layer1.0: conv1, conv2 3x3 64->64. peft conv LoRA: A = r x in x k x k, B = out x r.
    ([1], 2 * 4 * (64 * 9 + 64)),
    # layer2.0: conv1 3x3 64->128, conv2 3x3 128->128, shortcut 1x1 64->128.
    ([2], 4 * (64 * 9 + 128) + 4 * (128 * 9 + 128) + 4 * (64 + 128))])
def test_resnet_lora_count_on_convolutions(layers, expected):
    m = tiny("resnet")
    a = apply(m, "lora", r=4, layers=layers)
    assert a.inserted == expected
    assert n_trainable(m) == expected + RESNET_HEAD


def test_depthwise_separable_nets_get_pointwise_convs_only():
    model = tiny("efficientnet")
    depthwise = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1}
    a = apply(model, "lora", r=4)
    names = a.info["targets"]
    assert depthwise and names and not depthwise & set(names)     # peft refuses grouped convs at this rank
    assert any(n.endswith("conv_pwl") for n in names)


@pytest.mark.parametrize("family", ["vit", "swin", "resnet", "convnext", "efficientnet"])
def test_zero_init_lora_leaves_logits_identical_and_trains_one_step(family):
    x, _ = batch()
    ref = frozen_logits(family, x)
    a = apply(tiny(family), "lora", r=4)
    a.eval()
    with torch.no_grad():
        assert torch.equal(a.logits(x), ref)
    train_step_keeps_frozen(a)


def test_peft_wrapped_model_keeps_family_points_and_is_what_runs():
    m = tiny("vit")
    a = apply(m, "lora", r=4, layers=[2])
    assert isinstance(a.model, PeftModel)
    assert family_of(a.model) == "vit" and len(block_points(a.model)) == 3
    assert resolve_layers(a.model, [2])[0].module_path == "blocks.1"
    calls = []
    a.model.register_forward_pre_hook(lambda mod, args: calls.append(1))
    a.logits(batch(2)[0])
    assert calls == [1]
    # Names of the timm model are intact: the head is counted as the head by the runner.
    params = count_params(m, ["head"])
    assert params["trainable"] - params["trainable_no_head"] == VIT_HEAD
    assert a.info["merged_at_inference"] is False


def test_dropout_trains_while_backbone_stays_in_eval_mode():
    m = tiny("vit")
    a = apply(m, "lora", r=4, dropout=0.1)
    a.train()
    assert m.blocks[0].attn.qkv.lora_dropout["default"].training
    assert not m.blocks[0].norm1.training and not m.blocks[0].mlp.drop1.training
    a.eval()
    assert not m.blocks[0].attn.qkv.lora_dropout["default"].training


def test_merge_at_inference_matches_unmerged_and_unmerges_for_training():
    x, _ = batch()
    a = apply(tiny("vit"), "lora", r=4, merge=True)
    train_step_keeps_frozen(a)  # B != 0 now
    a.train()
    with torch.no_grad():
        unmerged = a.logits(x)
    a.eval()
    qkv = a.model.base_model.model.blocks[0].attn.qkv
    assert qkv.merged and a.info["merged_at_inference"]
    with torch.no_grad():
        torch.testing.assert_close(a.logits(x), unmerged, rtol=1e-5, atol=1e-5)
    a.train()
    assert not qkv.merged


@pytest.mark.parametrize("kwargs,msg", [
    ({"targets": ["nope"]}, "match no Linear/Conv2d"),
    ({"layers": ["input"]}, "not blocks"),
    ({"r": 0}, "positive")])
def test_bad_lora_arguments_are_refused(kwargs, msg):
    with pytest.raises(MethodError, match=msg):
        apply(tiny("vit"), "lora", **kwargs)


def test_grouped_conv_needs_r_divisible_by_groups():
    with pytest.raises(MethodError, match="grouped conv"):
        apply(tiny("convnext"), "lora", r=4, targets=["conv_dw"])  # first stage: groups=8


# --- generic peft -----------------------------------------------------------------------------------
# Closed forms for the two qkv layers (32 -> 96) of tiny_vit at r=4:
#   LoHa: two rank-r pairs per layer, 2 * r * (in + out);
#   LoKr: W = w1 (x) (w2_a @ w2_b) with peft's factorisation out 96 = 8*12, in 32 = 4*8:
#         w1 is 8x4 (full), w2 = (12 x r)(r x 8);
#   IA3:  a vector over qkv's outputs (96) and over fc2's inputs (128, a feedforward module).
@pytest.mark.parametrize("config,targets,expected", [
    ({"peft_type": "LOHA", "r": 4, "alpha": 4}, None, 2 * 2 * 4 * (32 + 96)),
    ({"peft_type": "LOKR", "r": 4, "alpha": 4}, None, 2 * (8 * 4 + 4 * (12 + 8))),
    ({"peft_type": "IA3"}, ["qkv", "fc2"], 2 * (96 + 128))])
def test_generic_peft_counts_identity_at_init_and_one_step(config, targets, expected):
    x, _ = batch()
    ref = frozen_logits("vit", x)
    m = tiny("vit")
    a = apply(m, "peft", config=config, targets=targets)
    assert a.inserted == expected and n_trainable(m) == expected + VIT_HEAD
    assert a.info["peft_type"] == config["peft_type"]
    a.eval()
    with torch.no_grad():
        torch.testing.assert_close(a.logits(x), ref, rtol=0, atol=1e-6)
    train_step_keeps_frozen(a)


def test_ia3_scales_fc2_at_its_input():
    m = tiny("vit")
    apply(m, "peft", config={"peft_type": "IA3"}, targets=["qkv", "fc2"])
    assert m.blocks[0].mlp.fc2.ia3_l["default"].shape == (1, 128)
    assert m.blocks[0].attn.qkv.ia3_l["default"].shape == (96, 1)


def test_generic_peft_on_a_cnn():
    # Block 2 has a shortcut conv: in a randomly initialised timm ResNet the last BN of every residual
    # branch has weight 0, so only the shortcut's adapter gets a gradient at the first step.
    a = apply(tiny("resnet"), "peft", config={"peft_type": "LOHA", "r": 4}, layers=[2])
    train_step_keeps_frozen(a)


@pytest.mark.parametrize("config,msg", [
    ({"peft_type": "FOO"}, "not a peft tuner"), ({}, "not a peft tuner"),
    ({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 4}, "method=vpt"),
    ({"peft_type": "LOHA", "r": 4, "not_a_field": 1}, "LOHA config")])
def test_generic_peft_refuses_clearly(config, msg):
    with pytest.raises(MethodError, match=msg):
        apply(tiny("vit"), "peft", config=config)


@pytest.mark.parametrize("method", ["lora", "peft"])
def test_validates_on_the_meta_device(method):
    facts = validate(compose("model=tiny_vit", f"method={method}", "dataset=fmnist_tiny", "device=cpu"))
    assert facts["points"] == ["1", "2"]


@pytest.mark.parametrize("model,method,overrides,inserted", [
    ("tiny_vit", "lora", ["method.r=4", "method.merge=true"], 2 * 4 * (32 + 96)),
    ("tiny_vit", "peft", ["method.config={peft_type: IA3}", "method.targets=[qkv,fc2]"], 2 * (96 + 128))])
def test_runner_cell(tmp_path, model, method, overrides, inserted):
    rec = run_ok(tmp_path, model, method, *overrides)
    assert rec["params"]["inserted"] == inserted
    assert rec["params"]["trainable"] - rec["params"]["trainable_no_head"] == VIT_HEAD


def test_lora_on_a_single_layer_named_by_module_path():
    # tiny_vit: qkv is Linear(32, 96); LoRA r=2 adds A (2×32) and B (96×2); head 32×10 + 10.
    a = apply(tiny("vit"), "lora", r=2, layers=["blocks.0.attn.qkv"])
    assert a.info["targets"] == ["blocks.0.attn.qkv"]
    assert n_trainable(a.model) == 2 * 32 + 96 * 2 + 330
    with pytest.raises(MethodError, match="must name a Linear or Conv2d layer, not LayerNorm"):
        apply(tiny("vit"), "lora", r=2, layers=["blocks.0.norm1"])
