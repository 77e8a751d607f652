"""VPT: prompt tokens inserted by hooks, counted in closed form, invisible to pooling."""
import math

import pytest
import timm
import torch

from apbench.methods import MethodError, apply
from apbench.validate import validate
from conftest import compose
from method_checks import batch, n_trainable, run_ok, tiny, train_step_keeps_frozen

# tiny_vit: D=32, 2 blocks, patch 8 at 32 px -> 16 patches + 1 class token; head 32*10+10.
D, BLOCKS, PATCHES, HEAD = 32, 2, 16, 330


@pytest.mark.parametrize("variant,layers,expected_blocks", [
    ("deep", None, 2), ("deep", [2], 1), ("shallow", None, 1), ("shallow", [2], 1)])
def test_trainable_count_is_tokens_times_width_times_prompted_blocks(variant, layers, expected_blocks):
    m = tiny("vit")
    a = apply(m, "vpt", variant=variant, num_tokens=5, layers=layers)
    assert a.inserted == 5 * D * expected_blocks
    assert n_trainable(m) == 5 * D * expected_blocks + HEAD


def _grab(module, pre=True):
    seen = []
    if pre:
        h = module.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    else:
        h = module.register_forward_hook(lambda mod, args, out: seen.append(out.detach().clone()))
    return seen, h


def test_prompts_follow_the_class_token_and_deep_blocks_use_their_own():
    m = tiny("vit")
    a = apply(m, "vpt", variant="deep", num_tokens=3)
    a.eval()
    # Hooks registered after VPT's see the sequence VPT built.
    inputs = [_grab(b)[0] for b in m.blocks]
    norm_in, _ = _grab(m.norm)
    with torch.no_grad():
        a.logits(batch(2)[0])
    for k, block_in in enumerate(inputs):
        (x,) = block_in
        assert x.shape == (2, 1 + 3 + PATCHES, D)
        assert torch.equal(x[:, 1:4], m.apbench_vpt[str(k + 1)].expand(2, -1, -1))
    assert norm_in[0].shape == (2, 1 + PATCHES, D)  # prompts dropped before the final norm


def test_shallow_prompts_are_carried_not_replaced():
    m = tiny("vit")
    a = apply(m, "vpt", variant="shallow", num_tokens=3)
    a.eval()
    out0, _ = _grab(m.blocks[0], pre=False)
    in1, _ = _grab(m.blocks[1])
    with torch.no_grad():
        a.logits(batch(2)[0])
    assert torch.equal(in1[0], out0[0])


@pytest.mark.parametrize("pool", ["token", "avg"])
def test_pooling_never_sees_prompt_tokens(pool):
    torch.manual_seed(0)
    m = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2,
                          num_classes=10, global_pool=pool)
    a = apply(m, "vpt", variant="deep", num_tokens=4)
    a.eval()
    last, _ = _grab(m.blocks[-1], pre=False)
    with torch.no_grad():
        logits = a.logits(batch(2)[0])
        seq = last[0]  # last block output, prompts included: [cls | 4 prompts | patches]
        assert seq.shape[1] == 1 + 4 + PATCHES
        without = torch.cat([seq[:, :1], seq[:, 5:]], 1)
        a.remove()  # hooks off: the head alone on the prompt-free sequence
        expected = m.forward_head(m.norm(without))
        with_prompts = m.forward_head(m.norm(seq))
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    if pool == "avg":  # by construction the avg pool would have moved had prompts been averaged in
        assert not torch.allclose(logits, with_prompts)


def test_init_is_uniform_in_the_vpt_range():
    m = tiny("vit")
    apply(m, "vpt", num_tokens=50)
    bound = math.sqrt(6.0 / (3 * 8 * 8 + D))
    for p in m.apbench_vpt.values():
        assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound


@pytest.mark.parametrize("variant", ["deep", "shallow"])
def test_one_step_trains_prompts_and_head_only(variant):
    a = apply(tiny("vit"), "vpt", variant=variant, num_tokens=4)
    train_step_keeps_frozen(a)


@pytest.mark.parametrize("family", ["resnet", "swin", "convnext", "efficientnet"])
def test_refuses_other_families_naming_vit(family):
    with pytest.raises(MethodError, match="supports: vit"):
        apply(tiny(family), "vpt")


@pytest.mark.parametrize("kwargs,msg", [
    ({"layers": [0]}, "not blocks"), ({"layers": ["input"]}, "not blocks"),
    ({"variant": "shallow", "layers": [1, 2]}, "one block"), ({"variant": "wide"}, "unknown"),
    ({"num_tokens": 0}, "positive")])
def test_bad_arguments_are_refused(kwargs, msg):
    with pytest.raises(MethodError, match=msg):
        apply(tiny("vit"), "vpt", **kwargs)


def test_validates_on_the_meta_device():
    facts = validate(compose("model=tiny_vit", "method=vpt", "dataset=fmnist_tiny", "device=cpu"))
    assert facts["points"] == ["1", "2"]


def test_runner_cell(tmp_path):
    rec = run_ok(tmp_path, "tiny_vit", "vpt", "method.num_tokens=5")
    assert rec["params"]["inserted"] == 5 * D * BLOCKS
