"""Efficiency measures on a tiny frozen CNN with hook-based prompts (AP at a block, VP at the input)."""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from apbench.engine.efficiency import (StepTimer, count_params, flops, inference_throughput,
                                       measure_all, saved_activation_bytes, saved_bytes_by_module,
                                       train_mode, train_step_throughput, training_memory)

torch.set_num_threads(1)
B, IMG, NCLS = 4, 32, 10
# (in, out, stride) of the 4 conv-BN-ReLU blocks; outputs 8x32x32, 8x16x16, 16x8x8, 16x8x8
SPEC = [(3, 8, 1), (8, 8, 2), (8, 16, 2), (16, 16, 1)]
OUT_SHAPES = [(8, 32, 32), (8, 16, 16), (16, 8, 8), (16, 8, 8)]
FP32 = 4


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
            for i, o, s in SPEC])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(16, NCLS)

    def forward(self, x):
        return self.head(self.pool(self.blocks(x)))


def frozen(seed=0):
    """Backbone frozen, new head trainable, BN stats non-trivial (so a drift would show)."""
    torch.manual_seed(seed)
    m = TinyCNN()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
    for p in m.blocks.parameters():
        p.requires_grad_(False)
    return m


def add_prompt(model, where):
    """A learnable tensor added to the output of ``blocks[where]``, or to the pixels if "input"."""
    shape = (3, IMG, IMG) if where == "input" else OUT_SHAPES[where]
    model.prompt = nn.Parameter(torch.zeros(1, *shape))
    if where == "input":
        model.register_forward_pre_hook(lambda mod, args: (args[0] + mod.prompt,))
    else:
        model.blocks[where].register_forward_hook(lambda mod, args, out: out + model.prompt)
    return model


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, IMG, IMG, generator=g), torch.randint(NCLS, (B,), generator=g)


CE = nn.functional.cross_entropy


def saved(model):
    return saved_activation_bytes(model, *batch(), CE)


# ---------------------------------------------------------------- parameters

CONV = sum(i * o * 9 for i, o, _ in SPEC)          # 216 + 576 + 1152 + 2304 = 4248
BN = sum(2 * o for _, o, _ in SPEC)                # 96
HEAD = 16 * NCLS + NCLS                            # 170


def test_param_counts_closed_form():
    assert (CONV, BN, HEAD) == (4248, 96, 170)
    lp = count_params(frozen(), ["head"])
    assert lp == {"total": 4514, "trainable": 170, "trainable_no_head": 0, "inserted": 0}
    ap = count_params(add_prompt(frozen(), 1), ["head."], inserted=8 * 16 * 16)
    assert ap == {"total": 4514 + 2048, "trainable": 170 + 2048, "trainable_no_head": 2048,
                  "inserted": 2048}
    ft = frozen().requires_grad_(True)
    assert count_params(ft, ["head"])["trainable_no_head"] == CONV + BN


def test_param_counts_tied_once_and_whole_prefixes():
    m = nn.Module()
    m.head = nn.Linear(4, 4, bias=False)
    m.header = nn.Linear(4, 4, bias=False)  # not under "head"
    m.tied = m.head                          # same Parameter under a second name
    c = count_params(m, ["head"])
    assert c["total"] == 32 and c["trainable"] == 32 and c["trainable_no_head"] == 16


# ---------------------------------------------------------------- saved activations

def test_saved_bytes_ordered_ap_deep_lt_ap_shallow_lt_vp():
    deep, shallow, vp = saved(add_prompt(frozen(), 3)), saved(add_prompt(frozen(), 1)), \
        saved(add_prompt(frozen(), "input"))
    assert 0 < deep < shallow < vp


@pytest.mark.parametrize("k", [0, 1, 2])
def test_frozen_prefix_saves_nothing(k):
    per_module = saved_bytes_by_module(add_prompt(frozen(), k), *batch(), CE)
    prefix = [f"blocks.{i}" for i in range(k + 1)]
    from_prefix = {n: b for n, b in per_module.items()
                   if any(n == p or n.startswith(p + ".") for p in prefix)}
    assert from_prefix == {}
    assert any(n.startswith(f"blocks.{k + 1}") for n in per_module)  # the suffix does save


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_prompted_model_saves_exactly_what_its_suffix_saves(k):
    """AP at block k == a model of blocks k+1.. fed the prompted activation as a leaf that needs grad."""
    model = add_prompt(frozen(), k)
    with torch.no_grad():
        model.prompt.normal_()
    x, y = batch()
    with torch.no_grad():
        h = model.eval().blocks[: k + 1](x) + model.prompt
    suffix = nn.Sequential(*model.blocks[k + 1:], model.pool, model.head)
    assert saved(model) == saved_activation_bytes(suffix, h.requires_grad_(), y, CE)


def test_linear_probe_saves_only_head_input_and_loss():
    model = frozen()
    per_module = saved_bytes_by_module(model, *batch(), CE)
    assert set(per_module) == {"head", "<outside>"}
    assert per_module["head"] == B * 16 * FP32  # pooled features, kept for the weight gradient
    mem = training_memory(model, *batch(), CE, "sgd")
    assert mem["saved_activation_bytes"] == sum(per_module.values())


def test_saved_bytes_leave_out_parameters_and_count_views_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(8))

        def forward(self, x):
            h = x * self.w                  # saves x (an input leaf) and w (a parameter)
            return (h[:, :4] * h[:, :4]).sum(1, keepdim=True).expand(-1, 2)  # saves a view of h twice

    x = torch.randn(B, 8, requires_grad=True)
    per_module = saved_bytes_by_module(Twice(), x, torch.zeros(B, dtype=torch.long), CE)
    assert per_module[""] == 2 * B * 8 * FP32  # x and h's storage, each once; w left out


# ---------------------------------------------------------------- memory

@pytest.mark.parametrize("opt,factor", [("adamw", 2), ("adam", 2), ("sgd", 1)])
def test_optimizer_state_bytes(opt, factor):
    model = add_prompt(frozen(), 1)
    mem = training_memory(model, *batch(), CE, opt)
    assert mem["grad_bytes"] == (HEAD + 2048) * FP32
    assert mem["param_bytes"] == (CONV + BN + HEAD + 2048) * FP32
    assert mem["optimizer_state_bytes"] == factor * mem["grad_bytes"]
    assert mem["memory_bytes"] == (mem["saved_activation_bytes"] + mem["param_bytes"]
                                   + mem["grad_bytes"] + mem["optimizer_state_bytes"])
    assert mem["cuda_peak_bytes"] is None


def test_frozen_bn_stays_in_eval_and_measurements_change_nothing():
    model = add_prompt(frozen(), 1)
    model.head.requires_grad_(True)
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    modes_during = []
    for m in bn:
        m.register_forward_pre_hook(lambda mod, args: modes_during.append(mod.training))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]

    training_memory(model, *batch(), CE, "adamw")
    train_step_throughput(model, None, B, IMG, "cpu", warmup=1, iters=2)
    flops(model, IMG, train=True)

    assert modes_during and not any(modes_during)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # stats, prompt, head: bit-identical
    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_measurement_restores_stats_of_tuned_norms():
    """A tuned BN trains in train mode and moves its stats; the measurement must put them back."""
    model = frozen()
    model.blocks[2][1].requires_grad_(True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training_memory(model, *batch(), CE, "sgd")
    train_step_throughput(model, None, B, IMG, "cpu", warmup=1, iters=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_train_mode_keeps_tuned_norms_training():
    model = frozen()
    model.blocks[2][1].requires_grad_(True)  # norm tuning on one BN
    train_mode(model)
    assert [m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)] == \
        [False, False, True, False]
    assert model.training and model.head.training


# ---------------------------------------------------------------- FLOPs

def test_flops_linear_closed_form():
    k, n = 3 * 8 * 8, 5
    model = nn.Sequential(nn.Flatten(), nn.Linear(k, n))
    assert flops(model, 8, train=False) == 2 * 1 * n * k
    # backward of a first layer computes only the weight gradient: one more M*N*K matmul
    assert flops(model, 8, train=True) == 2 * (2 * 1 * n * k)


def test_flops_conv_closed_form_and_frozen_prefix():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert flops(conv, IMG, train=False) == 2 * (8 * IMG * IMG) * (3 * 9)
    lp, ap = frozen(), add_prompt(frozen(), 1)
    # a frozen backbone costs its forward only in training; a prompt adds the suffix's backward
    assert flops(lp, IMG, train=True) - flops(lp, IMG, train=False) == 2 * 16 * NCLS
    assert flops(ap, IMG, train=True) > flops(lp, IMG, train=True)


# ---------------------------------------------------------------- throughput and timing

KEYS = {"img_per_s", "step_time_s", "batch_size", "image_size", "precision", "warmup", "iters"}


class ForwardClock:
    """A fake ``time.perf_counter`` that advances 0.25 s per forward of the model, and only then: the
    figures become exact numbers that say which forwards were timed (warm-up excluded, every timed
    iteration counted) and how the record turns seconds into steps and images."""

    STEP = 0.25

    def __init__(self, model):
        self.now, self.forwards = 100.0, 0
        model.register_forward_hook(self._tick)

    def _tick(self, *_):
        self.now += self.STEP
        self.forwards += 1

    def perf_counter(self):
        return self.now


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_inference_throughput_record(precision, monkeypatch):
    from types import SimpleNamespace
    from apbench.engine import speed

    model = frozen()
    clock = ForwardClock(model)
    monkeypatch.setattr(speed, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    r = inference_throughput(model, B, IMG, "cpu", precision=precision, warmup=1, iters=2)
    assert clock.forwards == 1 + 2
    # 2 timed forwards = 0.5 s: 0.25 s per step, B=4 images per step -> 16 img/s
    assert r == {"img_per_s": 16.0, "step_time_s": 0.25, "batch_size": B, "image_size": [IMG, IMG],
                 "precision": precision, "warmup": 1, "iters": 2}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_train_step_throughput_record(precision, monkeypatch):
    from types import SimpleNamespace
    from apbench.engine import speed

    model = add_prompt(frozen(), 2)
    clock = ForwardClock(model)
    monkeypatch.setattr(speed, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    r = train_step_throughput(model, [model.prompt, *model.head.parameters()], B, IMG, "cpu",
                              precision=precision, optimizer_name="adamw", warmup=1, iters=3)
    # one untimed forward reads the output width, then 1 warm-up + 3 timed steps of one forward each
    assert clock.forwards == 1 + 1 + 3
    # 3 timed steps = 0.75 s: 0.25 s per step, 4 images per step -> 16 img/s
    assert r == {"img_per_s": 16.0, "step_time_s": 0.25, "batch_size": B, "image_size": [IMG, IMG],
                 "precision": precision, "warmup": 1, "iters": 3}


def test_step_timer_separates_data_from_compute():
    def loader():
        for i in range(3):
            time.sleep(0.01)
            yield i

    timer = StepTimer("cpu")
    for _ in range(2):
        with timer.epoch():
            for _ in timer.iter(loader()):
                time.sleep(0.02)
    assert timer.steps == 6
    assert timer.data_time_s >= 0.01 and timer.step_time_s >= 0.02
    assert timer.epoch_time_s >= 3 * 0.03 and timer.train_time_s == pytest.approx(
        2 * timer.epoch_time_s)
    with timer.epoch():
        for _ in timer.iter(loader()):
            break  # a step left early still counts
    assert timer.steps == 7


def test_measure_all_keys_match_record_schema():
    model = add_prompt(frozen(), 1)
    r = measure_all(model, ["head"], 2048, IMG, "cpu", "sgd", B, warmup=1, iters=1)
    assert set(r["params"]) == {"total", "trainable", "trainable_no_head", "inserted", "effective"}
    record_keys = {"train_time_s", "epoch_time_s", "step_time_s", "data_time_s",
                   "saved_activation_bytes", "memory_bytes", "cuda_peak_bytes", "train_throughput",
                   "infer_throughput", "flops_infer", "flops_train", "batch_size", "image_size",
                   "precision"}
    assert record_keys <= set(r["efficiency"])
    assert r["efficiency"]["saved_activation_bytes"] == saved(add_prompt(frozen(), 1))
    assert r["efficiency"]["train_time_s"] is None  # no timer given
