"""LP / AP / FT through the registry: closed-form trainable counts, frozen stays frozen, zero AP is exact."""
import copy

import pytest
import torch
import torch.nn.functional as F

from apbench import methods
from conftest import tiny_model

# tiny_resnet = resnet18 with one BasicBlock per stage, 10 classes, 32 px. Counted by hand:
STEM = 3 * 64 * 7 * 7 + 2 * 64                                            # conv1 + bn1
L1 = 2 * (64 * 64 * 9 + 2 * 64)
L2 = 64 * 128 * 9 + 128 * 128 * 9 + 64 * 128 + 3 * 2 * 128                # 2 convs + downsample, 3 BNs
L3 = 128 * 256 * 9 + 256 * 256 * 9 + 128 * 256 + 3 * 2 * 256
L4 = 256 * 512 * 9 + 512 * 512 * 9 + 256 * 512 + 3 * 2 * 512
HEAD = 512 * 10 + 10
TOTAL = STEM + L1 + L2 + L3 + L4 + HEAD                                  # 4,910,922


@pytest.mark.parametrize("name,kwargs,trainable,inserted", [
    ("linear_probe", {}, HEAD, 0),
    ("full_ft", {}, TOTAL, 0),
    ("ap", {"layers": ["input"]}, 3 * 32 * 32 + HEAD, 3 * 32 * 32),        # additive VP
    ("ap", {"layers": [1]}, 64 * 8 * 8 + HEAD, 64 * 8 * 8),                # after layer1: 64×8×8
    ("ap", {"layers": [-1]}, 512 + HEAD, 512),                              # after layer4: 512×1×1
    ("ap", {"layers": [1, 2]}, 64 * 64 + 128 * 16 + HEAD, 64 * 64 + 128 * 16),
    ("ap", {"layers": [2], "shape": "channel"}, 128 + HEAD, 128),
])
def test_trainable_counts_closed_form(name, kwargs, trainable, inserted):
    model = tiny_model("resnet")
    assert sum(p.numel() for p in model.parameters()) == TOTAL
    a = methods.apply(model, name, input_size=(3, 32, 32), **kwargs)
    assert sum(p.numel() for p in a.trainable()) == trainable
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == trainable
    assert a.inserted == inserted


def _steps(adapted, n=3):
    opt = torch.optim.SGD(adapted.trainable(), lr=0.5, momentum=0.9)
    torch.manual_seed(1)
    for _ in range(n):
        adapted.train()
        x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
        loss = F.cross_entropy(adapted.logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("family", ["resnet", "vit", "swin", "convnext", "efficientnet"])
@pytest.mark.parametrize("name,kwargs", [("linear_probe", {}), ("ap", {"layers": [1]})])
def test_frozen_weights_and_buffers_bit_identical_after_training(family, name, kwargs):
    model = tiny_model(family)
    before = copy.deepcopy(model.state_dict())
    a = methods.apply(model, name, input_size=(3, 32, 32), **kwargs)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    _steps(a)
    after = model.state_dict()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and changed <= trainable      # only trainable tensors moved; BN statistics did not


def test_full_ft_updates_bn_statistics():
    model = tiny_model("resnet")
    before = model.bn1.running_mean.clone()
    a = methods.apply(model, "full_ft", input_size=(3, 32, 32))
    assert a.bn_mode == "train_stats"
    _steps(a, 1)
    assert not torch.equal(before, model.bn1.running_mean)


@pytest.mark.parametrize("family", ["resnet", "vit", "swin", "convnext", "efficientnet"])
def test_zero_ap_leaves_logits_bit_identical(family):
    model = tiny_model(family).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        methods.apply(model, "ap", input_size=(3, 32, 32), layers=["input", 0, 1, -1])
        assert torch.equal(model(x), ref)


def test_unknown_method_and_argument_are_refused():
    with pytest.raises(methods.MethodError, match="unknown method 'lora2'; available: adapter, ap, bitfit, e2vpt_no_pruning, full_ft, gated_prompt, linear_probe, lora, norm_tuning, peft, ssf, vp, vpt"):
        methods.apply(tiny_model("resnet"), "lora2")
    with pytest.raises(methods.MethodError, match=r"takes no argument\(s\) \['depth'\]"):
        methods.apply(tiny_model("resnet"), "ap", depth=3)
