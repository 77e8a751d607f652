"""Training and method behaviour that changes a published number if it breaks (issue 26 item 6): full
fine-tuning reports test accuracy from BatchNorm in eval mode (checked against a reference forward in
eval mode through the real run), and LoRA's update is scaled by alpha / r exactly as peft defines it."""
import copy

import pytest
import torch

from apbench import cell, methods
from apbench.engine.loop import loader
from apbench.run import run

from conftest import compose, tiny_model


def test_full_fine_tuning_evaluates_with_batchnorm_in_eval_mode(tmp_path, monkeypatch):
    seen = {}
    real = cell.evaluate

    def evaluate_and_reference(adapted, dataset, device, batch_size, amp, desc, predictions=None, **k):
        # The reference: a copy of the trained network put in eval mode by torch itself (BatchNorm on
        # its running statistics), the same images in the same order.
        ref = copy.deepcopy(adapted)
        torch.nn.Module.eval(ref.model)
        with torch.no_grad():
            seen["reference"] = torch.cat([ref.logits(x).argmax(-1) for x, _ in loader(dataset, batch_size, False, 0, 0)])
        buffers = {n: b.clone() for n, b in adapted.model.named_buffers()}
        top1 = real(adapted, dataset, device, batch_size, amp, desc, predictions=predictions, **k)
        seen["buffers_moved"] = [n for n, b in adapted.model.named_buffers() if not torch.equal(b, buffers[n])]
        return top1
    monkeypatch.setattr(cell, "evaluate", evaluate_and_reference)
    rec = run(compose("model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu", "method=full_ft",
                      "trainer.epochs=2", "trainer.measure_efficiency=false", f"paths.root_dir={tmp_path}"))
    assert rec["status"] == "ok" and rec["bn_mode"] == "train_stats", rec.get("error")  # BN statistics trained
    from apbench.results.predictions import decode
    pred, target = decode(rec["predictions"])
    assert torch.equal(torch.from_numpy(pred), seen["reference"])  # every test prediction as in eval mode
    assert rec["metrics"]["test_top1"] == pytest.approx(100.0 * (pred == target).mean())
    assert seen["buffers_moved"] == []  # evaluating moved no running statistic


def _capture(module):
    got = {}

    def hook(mod, args, out):
        got["x"], got["out"] = args[0].detach().clone(), out.detach().clone()
    return got, module.register_forward_hook(hook)


def _qkv(model, block: int = 0):
    return [m for n, m in model.named_modules() if n.endswith(f"blocks.{block}.attn.qkv")][-1]


@pytest.mark.parametrize("r, alpha", [(4, 8), (8, 4), (2, 2)])  # scaling alpha / r = 2, 0.5, 1
def test_lora_update_is_scaled_by_alpha_over_r(r, alpha):
    model = tiny_model("vit")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    base, h = _capture(_qkv(model))
    with torch.no_grad():
        model.eval()(x)
    h.remove()
    adapted = methods.apply(model, "lora", input_size=(3, 32, 32), layers=[1], targets=["qkv"], r=r, alpha=alpha)
    lora_layer = _qkv(adapted.model)
    g = torch.Generator().manual_seed(2)  # B is zero at init: give A and B known values
    A, B = lora_layer.lora_A["default"].weight, lora_layer.lora_B["default"].weight
    with torch.no_grad():
        A.copy_(torch.randn(A.shape, generator=g))
        B.copy_(torch.randn(B.shape, generator=g))
    got, h = _capture(lora_layer)
    with torch.no_grad():
        adapted.eval().logits(x)
    h.remove()
    assert torch.equal(got["x"], base["x"])  # the layer sees the same input: the difference is LoRA's alone
    want = (alpha / r) * got["x"] @ A.T @ B.T  # W x + b + (alpha / r) B A x
    torch.testing.assert_close(got["out"] - base["out"], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("r, alpha", [(4, 8), (8, 4)])
def test_lora_on_q_and_v_parts_is_scaled_by_alpha_over_r_and_leaves_k(r, alpha):
    model = tiny_model("vit")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    base, h = _capture(_qkv(model))
    with torch.no_grad():
        model.eval()(x)
    h.remove()
    adapted = methods.apply(model, "lora", input_size=(3, 32, 32), layers=[1], targets=["q", "v"], r=r, alpha=alpha)
    [slice_lora] = adapted.model.apbench_qkv_lora.values()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in slice_lora.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    got, h = _capture(_qkv(adapted.model))
    with torch.no_grad():
        adapted.eval().logits(x)
    h.remove()
    d = base["out"].shape[-1] // 3
    delta = got["out"] - base["out"]
    for i, part in enumerate("qkv"):
        want = ((alpha / r) * got["x"] @ slice_lora.A[part].T @ slice_lora.B[part].T if part in "qv"
                else torch.zeros_like(delta[..., :d]))
        torch.testing.assert_close(delta[..., i * d:(i + 1) * d], want, rtol=1e-4, atol=1e-5)
