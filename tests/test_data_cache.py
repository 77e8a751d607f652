"""The decode-once cache gives the tensors uncached loading gives, and decodes nothing after the first pass."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from apbench import data
from apbench.data import cache as cache_mod
from apbench.data.images import ArrayImages, ImageDataset
from conftest import compose
from data_writers import PRE, write_cifar, write_fgvc, write_vtab


@pytest.fixture(autouse=True)
def fresh_memory():
    cache_mod._MEMORY.clear()
    yield
    cache_mod._MEMORY.clear()


@pytest.fixture
def decodes(monkeypatch):
    """Counts every raw decode, whatever the dataset type."""
    calls = {"n": 0}
    for cls in (data.images.ImageFiles, data.images.ArrayImages):
        orig = cls.raw

        def counted(self, i, _orig=orig):
            calls["n"] += 1
            return _orig(self, i)
        monkeypatch.setattr(cls, "raw", counted)
    return calls


def build(name, root, *overrides, pre=PRE):
    over = [f"+dataset.{o[1:]}" if o.startswith("+") else f"dataset.{o}" for o in overrides]
    cfg = compose(f"dataset={name}", *over)
    return data.build(OmegaConf.to_container(cfg.dataset, resolve=True), pre, str(root))


def items(ds):
    return [ds[i] for i in range(len(ds))]


def same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert ya == yb and torch.equal(xa, xb)


def test_memory_cache_is_identical_and_decodes_once(tmp_path, decodes):
    write_vtab(tmp_path, "dtd")
    plain = build("vtab1k_dtd", tmp_path, "cache=none")
    ref_train, ref_val = items(plain.train), items(plain.val)
    decodes["n"] = 0
    cached = build("vtab1k_dtd", tmp_path, "cache=memory")
    assert decodes["n"] == 9  # train + val, decoded while building
    for _ in range(3):  # epochs
        same(items(cached.train), ref_train)
    same(items(cached.val), ref_val)
    assert decodes["n"] == 9
    assert cached.info["cache"] == "memory"
    assert not isinstance(cached.test(), cache_mod.CachedImages)  # memory mode leaves test uncached


def test_crop_flip_runs_on_cached_uint8_images(tmp_path):
    write_fgvc(tmp_path, "CUB_200_2011")
    pre = PRE | {"input_size": (3, 7, 7)}  # resize to 8 px (256/224), random 7 px crops
    plain = build("fgvc_cub", tmp_path, "num_classes=3", "cache=none", pre=pre)
    cached = build("fgvc_cub", tmp_path, "num_classes=3", "cache=memory", pre=pre)
    assert cached.train.store.shape == (6, 3, 8, 8)
    torch.manual_seed(0)
    a = items(plain.train)
    torch.manual_seed(0)
    b = items(cached.train)
    same(a, b)
    assert a[0][0].shape == (3, 7, 7)


def test_disk_cache_is_reused_across_builds_and_covers_test(tmp_path, decodes):
    write_vtab(tmp_path, "dtd")
    plain = build("vtab1k_dtd", tmp_path, "cache=none")
    ref = items(plain.train), items(plain.test())
    store = tmp_path / "cache"
    first = build("vtab1k_dtd", tmp_path, "cache=disk", f"+cache_dir={store}")
    files = sorted(p.name for p in store.iterdir())
    assert len(files) == 2 and all(f.startswith("vtab1k_dtd__") and f.endswith("-8x8-bilinear.npy") for f in files)
    same(items(first.test()), ref[1])
    assert len(list(store.iterdir())) == 3
    decodes["n"] = 0
    second = build("vtab1k_dtd", tmp_path, "cache=disk", f"+cache_dir={store}")
    same(items(second.train), ref[0])
    same(items(second.test()), ref[1])
    assert decodes["n"] == 0


def test_cache_key_follows_the_resize(tmp_path):
    write_vtab(tmp_path, "dtd")
    store = tmp_path / "cache"
    build("vtab1k_dtd", tmp_path, "cache=disk", f"+cache_dir={store}")
    build("vtab1k_dtd", tmp_path, "cache=disk", f"+cache_dir={store}", pre=PRE | {"input_size": (3, 6, 6)})
    build("vtab1k_dtd", tmp_path, "cache=disk", f"+cache_dir={store}", pre=PRE | {"interpolation": "bicubic"})
    assert len(list(store.iterdir())) == 6  # (train, val) x three preprocessings


def test_array_datasets_cache_too(tmp_path):
    write_cifar(tmp_path, "cifar10")
    plain = build("cifar10", tmp_path, "cache=none")
    cached = build("cifar10", tmp_path, "cache=memory")
    same(items(cached.train), items(plain.train))


def test_unknown_cache_mode(tmp_path):
    write_vtab(tmp_path, "dtd")
    with pytest.raises(data.DataError, match="dataset.cache='ram' is not valid; choose one of none, memory, disk"):
        build("vtab1k_dtd", tmp_path, "cache=ram")


def test_every_loader_returns_cacheable_datasets(tmp_path):
    write_vtab(tmp_path, "dtd")
    s = build("vtab1k_dtd", tmp_path, "cache=none")
    assert all(isinstance(d, ImageDataset) for d in (s.train, s.val, s.test()))


def test_a_run_trains_on_cached_vtab1k_data(tiny_overrides, tmp_path):
    from apbench.run import run
    write_vtab(tmp_path / "data", "dtd")
    cfg = compose(*tiny_overrides, "dataset=vtab1k_dtd", "dataset.num_classes=3", "dataset.cache=memory",
                  f"paths.data_root={tmp_path / 'data'}", "method=linear_probe", "trainer.progress=false")
    rec = run(cfg)
    assert rec["status"] == "ok", rec["error"]
    assert rec["data"]["cache"] == "memory" and rec["data"]["sizes"]["train"] == 6
    # The cache changes where decoded images come from, nothing else: the same run without it gives
    # bit-identical metrics and per-epoch history (and the same run id: the cache is not identity).
    plain = run(compose(*tiny_overrides, "dataset=vtab1k_dtd", "dataset.num_classes=3", "dataset.cache=none",
                        f"paths.data_root={tmp_path / 'data'}", "method=linear_probe", "trainer.progress=false",
                        f"paths.results_dir={tmp_path / 'uncached'}"))
    assert plain["status"] == "ok", plain["error"]
    assert plain["data"].get("cache", "none") == "none" and plain["run_id"] == rec["run_id"]
    assert rec["metrics"] == plain["metrics"] and rec["history"] == plain["history"]
    assert rec["metrics"]["test_top1"] is not None


def test_collate_is_default_collate_on_one_thread():
    from torch.utils.data import default_collate
    batch = [(torch.randn(3, 8, 8), i) for i in range(4)]
    n = torch.get_num_threads()
    x, y = data.collate(batch)
    ref_x, ref_y = default_collate(batch)
    assert torch.equal(x, ref_x) and torch.equal(y, ref_y)
    assert torch.get_num_threads() == n  # restored


def test_read_only_arrays_are_copied_not_shared_with_a_warning():
    frozen = np.frombuffer(bytes(range(32)), dtype=np.uint8).reshape(2, 4, 4)  # as an idx file is read
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "not writable" UserWarning would fail here
        ds = ArrayImages(frozen, np.array([0, 1]))
    assert ds.raw(1).tolist() == [frozen[1].tolist()]
