"""The on-disk prefix store: later runs of a sweep load the activations an earlier run saved, train to
the very same result, and never take an entry computed for other images or other frozen weights."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from apbench import methods
from apbench.engine import prefix_cache
from apbench.engine.loop import TrainSettings, fit

from conftest import tiny_model

SIZE = (3, 32, 32)
CPU = torch.device("cpu")


def _data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, *SIZE, generator=g), torch.randint(0, 10, (n,), generator=g))


def _run(store_dir, seed=3, data_seed=0, perturb=False, layers=(2,), perturb_buffer=False):
    torch.manual_seed(seed)  # the prompt and head initialisation differ by seed; the prefix does not
    model = tiny_model("resnet")
    if perturb:  # another checkpoint: one frozen weight of the stem differs
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] += 1e-3
    if perturb_buffer:  # another checkpoint that differs only in a BatchNorm running mean (a buffer)
        with torch.no_grad():
            model.bn1.running_mean[0] += 1e-3
    adapted = methods.apply(model, "ap", input_size=SIZE, layers=list(layers), init="normal")
    sets = {"train": _data(seed=data_seed), "val": _data(8, seed=data_seed + 1)}
    cache = prefix_cache.prepare(adapted, sets, deterministic=True, input_size=SIZE, batch_size=6,
                                 store_dir=store_dir)
    settings = TrainSettings(epochs=2, batch_size=8, lr=1e-2, warmup_epochs=0, progress=False)
    with cache.active(adapted):
        out = fit(adapted, cache.sets["train"], CPU, settings, seed=seed)
    with torch.no_grad():
        logits = adapted.eval().logits(sets["val"].tensors[0])
    return cache.info, out, logits


def _hits(info):
    return {name: s["hit"] for name, s in info["store"]["splits"].items()}


def test_the_second_run_loads_what_the_first_saved_and_trains_identically(tmp_path):
    first, out1, logits1 = _run(tmp_path)
    second, out2, logits2 = _run(tmp_path)
    memory_only, out3, logits3 = _run(None)
    assert _hits(first) == {"train": False, "val": False} and _hits(second) == {"train": True, "val": True}
    assert all(s["bytes_written"] > 0 for s in first["store"]["splits"].values())
    assert len(list(tmp_path.glob("*.pt"))) == 2 and "store" not in memory_only
    assert torch.equal(logits1, logits2) and torch.equal(logits1, logits3)   # bit-identical training
    assert out1["history"] == out2["history"] == out3["history"]


def test_other_seeds_share_the_entry_other_images_or_weights_or_points_do_not(tmp_path):
    _run(tmp_path)
    assert _hits(_run(tmp_path, seed=4)[0]) == {"train": True, "val": True}   # trainable init only
    assert _hits(_run(tmp_path, data_seed=5)[0]) == {"train": False, "val": False}
    assert _hits(_run(tmp_path, perturb=True)[0]) == {"train": False, "val": False}
    other_point = _run(tmp_path, layers=(3,))[0]
    assert other_point["point"] == "3" and _hits(other_point) == {"train": False, "val": False}
    assert len(list(tmp_path.glob("*.pt"))) == 2 * 4


def test_a_batchnorm_running_mean_is_part_of_the_key(tmp_path):
    _, _, reference = _run(tmp_path)
    info, _, logits = _run(tmp_path, perturb_buffer=True)
    assert _hits(info) == {"train": False, "val": False}   # a hit would train on the other stem's output
    assert not torch.equal(logits, reference)               # the buffer really changes what is computed
    assert len(list(tmp_path.glob("*.pt"))) == 2 * 2


def test_a_corrupt_entry_is_rebuilt_and_replaced(tmp_path):
    _, _, reference = _run(tmp_path)
    for entry in tmp_path.glob("*.pt"):
        entry.write_bytes(b"not a torch file")
    info, _, logits = _run(tmp_path)
    assert _hits(info) == {"train": False, "val": False} and torch.equal(logits, reference)
    assert _hits(_run(tmp_path)[0]) == {"train": True, "val": True}   # the rebuilt entries are good


def test_the_run_id_ignores_the_store_and_an_unwritable_folder_is_refused(tiny_overrides, tmp_path):
    from apbench.run import run_id_of
    from apbench.validate import ConfigError, trainer_settings
    from conftest import compose

    plain = compose(*tiny_overrides, "method=ap", "method.layers=[2]")
    stored = compose(*tiny_overrides, "method=ap", "method.layers=[2]", f"trainer.prefix_cache_dir={tmp_path}/pc")
    assert run_id_of(plain) == run_id_of(stored)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    bad = compose(*tiny_overrides, "method=ap", f"trainer.prefix_cache_dir={blocker}/sub")
    with pytest.raises(ConfigError, match=r"trainer.prefix_cache_dir=.* is not a writable folder.*or null"):
        trainer_settings(bad)


def test_a_sweep_run_records_its_store_use(tiny_overrides, tmp_path):
    from apbench.run import run
    from conftest import compose

    over = (*tiny_overrides, "method=ap", "method.layers=[2]", "trainer.measure_efficiency=false",
            f"trainer.prefix_cache_dir={tmp_path}/pc")
    # two grid points of one cell (tiny_resnet's random backbone is drawn from the seed: keep it)
    first = run(compose(*over, "trainer.lr=0.01"))
    second = run(compose(*over, "trainer.lr=0.05"))
    assert first["status"] == second["status"] == "ok"
    assert not any(s["hit"] for s in first["prefix_cache"]["store"]["splits"].values())
    assert all(s["hit"] for s in second["prefix_cache"]["store"]["splits"].values())
