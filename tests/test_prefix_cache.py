"""Prefix cache: the prefix/suffix split is exact per family, cached training equals uncached
training, and the cache turns itself off (saying why) whenever it would not be exact."""
from __future__ import annotations

import pytest
import timm
import torch
from torch.utils.data import TensorDataset

from apbench import methods
from apbench.engine import prefix_cache, speed_options
from apbench.engine.loop import TrainSettings, fit
from apbench.models.layers import num_blocks
from apbench.models.suffix import run_prefix, run_suffix, suffix_steps

from conftest import TINY, tiny_model

SIZE = (3, 32, 32)
CPU = torch.device("cpu")

# Two blocks in a stage, so a point can sit mid-stage (the tiny configs have one block per stage).
DEEPER = {
    "resnet": ("resnet18", {"layers": [2, 2, 1, 1]}),
    "swin": ("swin_tiny_patch4_window7_224", {"img_size": 32, "window_size": 4, "depths": [2, 2],
                                              "num_heads": [1, 2], "embed_dim": 16}),
    "convnext": ("convnext_atto", {"depths": [2, 2, 1, 1], "dims": [8, 16, 32, 64]}),
    "efficientnet": ("tf_efficientnet_lite0", {}),
    "vit": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 3, "embed_dim": 32, "num_heads": 2}),
}


def _x(n=3, seed=1):
    return torch.randn(n, *SIZE, generator=torch.Generator().manual_seed(seed))


def _deeper(family):
    name, kwargs = DEEPER[family]
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=10, **kwargs).eval()


@pytest.mark.parametrize("deep", [False, True], ids=["tiny", "two-per-stage"])
@pytest.mark.parametrize("family", list(TINY))
def test_suffix_of_prefix_equals_the_full_forward_at_every_point(family, deep):
    model = _deeper(family) if deep else tiny_model(family).eval()
    x = _x()
    with torch.no_grad():
        full = model(x)
        for k in range(num_blocks(model) + 1):
            out = run_suffix(model, run_prefix(model, x, k), k)
            assert (out - full).abs().max() <= 1e-6, (family, k, suffix_steps(model, k))


@pytest.mark.parametrize("family", list(TINY))
def test_hooks_at_and_after_the_point_fire_once_on_the_cached_activation(family):
    model = tiny_model(family).eval()
    n = num_blocks(model)
    k = max(1, n - 1)
    adapted = methods.apply(model, "ap", input_size=SIZE, layers=[k, n], init="normal")
    x = _x()
    with torch.no_grad():
        full = adapted.logits(x)
        a = run_prefix(model, x, k)
        assert (run_suffix(model, a, k) - full).abs().max() <= 1e-6
        # The prompt at k is not in the prefix output: the prompted activation differs from it.
        adapted.remove()
        assert (run_suffix(model, a, k) - full).abs().max() > 1e-4


def _data(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, *SIZE, generator=g), torch.randint(0, 10, (n,), generator=g))


def _train(method, cache_mode, deterministic=True, max_gb=4.0, **kwargs):
    model = tiny_model("resnet")
    adapted = methods.apply(model, method, input_size=SIZE, **kwargs)
    train, val = _data(), _data(8, seed=1)
    cache = prefix_cache.prepare(adapted, {"train": train, "val": val}, deterministic=deterministic,
                                 mode=cache_mode, max_gb=max_gb, input_size=SIZE, batch_size=6)
    settings = TrainSettings(epochs=2, batch_size=8, lr=1e-2, warmup_epochs=0, progress=False)
    with cache.active(adapted):
        out = fit(adapted, cache.sets["train"], CPU, settings, seed=3)
        adapted.eval()
        with torch.no_grad():
            cached_view = torch.cat([adapted.logits(x) for x, _ in torch.utils.data.DataLoader(cache.sets["val"], 4)])
    with torch.no_grad():  # outside the context: the full model on images again
        logits = adapted.eval().logits(val.tensors[0])
    return cache, out, logits, cached_view


@pytest.mark.parametrize("method,kwargs,point", [("ap", {"layers": [2]}, "2"), ("linear_probe", {}, "4")])
def test_cached_training_matches_uncached(method, kwargs, point):
    cache, out, logits, view = _train(method, "auto", **kwargs)
    ref_cache, ref_out, ref_logits, _ = _train(method, "off", **kwargs)
    assert cache.info["used"] and cache.info["point"] == point, cache.info
    assert cache.info["bytes"] > 0 and cache.info["build_time_s"] > 0
    assert not ref_cache.info["used"] and ref_cache.info["reason"] == "trainer.prefix_cache=off"
    assert (logits - ref_logits).abs().max() <= 1e-5
    assert (view - logits).abs().max() <= 1e-5  # evaluating on the cached val split: same logits
    for a, b in zip(out["history"], ref_out["history"]):  # same batches in the same order
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
    assert (logits - tiny_model("resnet").eval()(_data(8, seed=1).tensors[0])).abs().max() > 1e-4  # it trained


def _plan(adapted, deterministic=True, **kw):
    return prefix_cache.prepare(adapted, {"train": _data(4)}, deterministic=deterministic, input_size=SIZE, **kw)


def test_off_for_input_prompts_augmentation_and_train_stats():
    vp = _plan(methods.apply(tiny_model("resnet"), "vp", input_size=SIZE, variant="pad", pad_width=4))
    assert not vp.used and "input" in vp.info["reason"]
    ap_in = _plan(methods.apply(tiny_model("resnet"), "ap", input_size=SIZE, layers=["input"]))
    assert not ap_in.used and "input" in ap_in.info["reason"]
    aug = _plan(methods.apply(tiny_model("resnet"), "ap", input_size=SIZE, layers=[2]), deterministic=False)
    assert not aug.used and "augmentation" in aug.info["reason"]
    ft = _plan(methods.apply(tiny_model("resnet"), "full_ft", input_size=SIZE))
    assert not ft.used and "train_stats" in ft.info["reason"]
    assert vp.sets["train"] is not None  # an off cache hands back the datasets it was given


def test_a_trainable_parameter_before_the_point_moves_it_earlier_or_turns_the_cache_off():
    model = tiny_model("resnet")
    adapted = methods.apply(model, "ap", input_size=SIZE, layers=[3])
    assert _plan(adapted).info["point"] == "3"
    model.layer1[0].conv1.weight.requires_grad_(True)  # a trainable weight inside block 1
    assert _plan(adapted).info["point"] == "0"
    model.conv1.weight.requires_grad_(True)            # and one in the stem: nothing frozen to cache
    plan = _plan(adapted)
    assert not plan.used and "before point 0" in plan.info["reason"]


def test_block_methods_cache_before_their_first_block():
    vit = tiny_model("vit")
    vpt = _plan(methods.apply(vit, "vpt", input_size=SIZE, layers=[2]))  # prompts enter at block 2's input
    assert vpt.used and vpt.info["point"] == "1"
    # SSF at the reference placement acts inside block 3 (after its convs and norms): block 2's output
    # is the last frozen activation; placed after each block (placement=blocks), block 3's output is.
    ssf = _plan(methods.apply(tiny_model("convnext"), "ssf", input_size=SIZE, layers=[3, 4]))
    assert ssf.used and ssf.info["point"] == "2"
    ssf_blocks = _plan(methods.apply(tiny_model("convnext"), "ssf", input_size=SIZE, layers=[3, 4], placement="blocks"))
    assert ssf_blocks.used and ssf_blocks.info["point"] == "3"
    lora = _plan(methods.apply(tiny_model("vit"), "lora", input_size=SIZE, layers=[2]))  # through peft's wrapper
    assert lora.used and lora.info["point"] == "1"


def test_iterative_label_mapping_sees_the_same_predictions_through_the_cache():
    results = []
    for mode in ("auto", "off"):
        model = tiny_model("resnet", num_classes=20)
        head = methods.setup_head(model, "ilm", 5)
        adapted = head.attach(methods.apply(model, "ap", input_size=SIZE, head_prefixes=head.prefixes, layers=[3]))
        g = torch.Generator().manual_seed(0)
        ds = TensorDataset(torch.randn(24, *SIZE, generator=g), torch.randint(0, 5, (24,), generator=g))
        cache = prefix_cache.prepare(adapted, {"train": ds}, deterministic=True, input_size=SIZE, mode=mode)
        with cache.active(adapted):
            fit(adapted, cache.sets["train"], CPU, TrainSettings(epochs=2, batch_size=8, lr=1e-2, warmup_epochs=0,
                                                                 progress=False), seed=0)
        with torch.no_grad():
            results.append((adapted.eval().logits(ds.tensors[0]), adapted.info["label_map_history"]))
    assert (results[0][0] - results[1][0]).abs().max() <= 1e-5
    assert results[0][1] == results[1][1] and len(results[0][1]) == 2


def test_size_budget_stores_fp16_or_refuses_with_the_size():
    kw = {"layers": [2]}
    full_bytes = 20 * 128 * 4 * 4 * 4  # 20 train images x (128, 4, 4) fp32 at resnet point 2
    cache, _, logits, _ = _train("ap", "auto", max_gb=0.75 * full_bytes / 1024 ** 3, **kw)
    assert cache.used and cache.info["dtype"] == "float16" and cache.info["reason"].startswith("fp16")
    ref = _train("ap", "off", **kw)[2]
    assert (logits - ref).abs().max() < 1e-2  # close, not exact: the prefix output was rounded
    refused, *_ = _train("ap", "auto", max_gb=0.25 * full_bytes / 1024 ** 3, **kw)
    assert not refused.used and "GB" in refused.info["reason"] and "prefix_cache_max_gb" in refused.info["reason"]


def test_compile_failure_falls_back_to_eager_and_says_so(monkeypatch):
    adapted = methods.apply(tiny_model("resnet"), "ap", input_size=SIZE, layers=[2])
    x = _x(2)
    with torch.no_grad():
        before = adapted.eval().logits(x)

    def broken(fn, *a, **k):
        def run(*args, **kwargs):
            raise RuntimeError("no toolchain here")
        return run
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        with speed_options.applied(adapted, _data(4), compile=True, channels_last=True) as info:
            with torch.no_grad():
                assert torch.allclose(adapted.eval().logits(x), before, atol=1e-5)
    assert info["compile"] is False and "no toolchain" in info["compile_warning"]
    assert info["channels_last"] is True and info["compile_requested"] is True
    assert all(p.grad is None for p in adapted.trainable())


def test_a_run_records_the_cache_and_the_speed_options(tiny_overrides):
    from apbench.run import run
    from conftest import compose

    rec = run(compose(*tiny_overrides, "method=ap", "method.layers=[2]", "trainer.measure_efficiency=false"))
    assert rec["status"] == "ok", rec["error"]
    pc = rec["prefix_cache"]
    assert pc["used"] and pc["point"] == "2" and pc["bytes"] > 0 and set(pc["images"]) == (
        {"train", "val", "test"} if rec["stage"] == "final" else {"train", "val"})
    assert rec["efficiency"]["prefix_cache_build_s"] > 0
    assert rec["speed_options"] == {"amp": "none", "channels_last": False, "compile": False,
                                    "compile_requested": False, "compile_warning": None, "compile_time_s": None}
    aug = run(compose(*tiny_overrides, "method=ap", "method.layers=[2]", "trainer.measure_efficiency=false",
                      "dataset.augment=crop_flip"))
    assert aug["status"] == "ok" and not aug["prefix_cache"]["used"]
    assert "augmentation" in aug["prefix_cache"]["reason"]
