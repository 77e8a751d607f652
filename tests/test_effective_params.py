"""Nominal vs effective trainable parameters (issue 8): dead prompt entries are not counted."""
import torch

from apbench import methods
from apbench.engine.params import effective_params
from conftest import tiny_model


def _counts(model, name, group=None, **kw):
    a = methods.apply(model, name, input_size=(3, 32, 32), **kw)
    a.eval()
    params = a.param_groups[group] if group else a.trainable()
    nominal = sum(p.numel() for p in params)
    before = [p.detach().clone() for p in params]
    eff = effective_params(a.logits, params, (3, 32, 32))
    assert all(torch.equal(b, p) for b, p in zip(before, params))     # restored exactly
    return nominal, eff


def test_patch_token_prompt_after_last_vit_block_is_dead_when_head_reads_the_class_token():
    model = tiny_model("vit")                      # global_pool="token": the head reads the class token
    assert model.global_pool == "token"
    nominal, eff = _counts(model, "ap", group="prompt", layers=[-1])
    assert nominal == 17 * 32                      # 17 tokens × width 32, nominally
    assert eff == 1 * 32                           # only the class-token row reaches the loss


def test_prompt_before_the_last_block_and_zero_init_lora_are_fully_effective():
    nominal, eff = _counts(tiny_model("vit"), "ap", group="prompt", layers=[1])
    assert eff == nominal == 17 * 32               # attention mixes every token into the class token
    nominal, eff = _counts(tiny_model("vit"), "lora", r=2)
    assert eff == nominal                          # A's gradient is hidden by B=0 only at initialization
