"""The sklearn digits loader, and the small CNN / ViT pretrained here on Fashion-MNIST."""
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from apbench import data
from apbench.data.fashion_mnist import DEBIAN_DIR, read_idx
from apbench.data.sklearn_digits import digits_arrays, split_indices
from apbench.data.transforms import build_transform
from apbench.models.factory import build_model
from apbench.models.small_pretrained import ASSETS, SMALL, asset_info
from conftest import CONF, compose

pytest.importorskip("sklearn")
PRE32 = {"input_size": (3, 32, 32), "interpolation": "bilinear", "mean": (0.5,) * 3, "std": (0.5,) * 3}


def digits_cfg(**overrides):
    return OmegaConf.to_container(OmegaConf.load(CONF / "dataset" / "digits.yaml")) | overrides


def test_digits_splits_counts_classes_and_disjointness():
    splits = data.build(digits_cfg(), PRE32)
    assert (len(splits.train), len(splits.val), len(splits.test())) == (800, 200, 797)
    assert splits.num_classes == 10
    assert np.bincount(np.asarray(splits.train.labels)).tolist() == [80] * 10   # balanced
    assert np.bincount(np.asarray(splits.val.labels)).tolist() == [20] * 10
    assert set(np.asarray(splits.test().labels).tolist()) == set(range(10))
    x, y = splits.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= y < 10

    images, labels = digits_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    tr, va, te = split_indices(labels, 800, 200, split_seed=0)
    assert not set(tr) & set(va) and not set(tr) & set(te) and not set(va) & set(te)
    assert len(tr) + len(va) + len(te) == 1797
    again = split_indices(labels, 800, 200, split_seed=0)                   # fixed by split_seed
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert not np.array_equal(split_indices(labels, 800, 200, split_seed=1)[0], tr)


def test_digits_trainval_and_bad_sizes():
    assert len(data.build(digits_cfg(trainval=True), PRE32).train) == 1000
    with pytest.raises(data.DataError, match="multiples of 10"):
        data.build(digits_cfg(train_size=805), PRE32)
    with pytest.raises(data.DataError, match="leaves no test images"):
        data.build(digits_cfg(train_size=1500, val_size=300), PRE32)


def test_small_model_assets_are_small_and_match_their_configs():
    assert sum(p.stat().st_size for p in ASSETS.iterdir()) < 25e6
    for key, arch in SMALL.items():
        info, mc = asset_info(key), OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{key}.yaml"))
        assert (mc["name"], mc["bundled"], mc["weights"]) == (arch, key, "bundled") == (info["arch"], key, "bundled")
        assert mc["kwargs"] == info["kwargs"]
        assert mc["preprocessing"]["mean"] == info["preprocessing"]["mean"]
        assert mc["preprocessing"]["std"] == info["preprocessing"]["std"]
        assert mc["preprocessing"]["image_size"] == 32


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) not installed")
@pytest.mark.parametrize("key", sorted(SMALL))
def test_small_models_are_really_trained(key):
    """On the first 500 official test images, within 2 points of the accuracy recorded at pretraining."""
    mc = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{key}.yaml"))
    built = build_model(mc)
    assert built.weights == f"bundled:{key}" and built.source_classes == 10
    images = torch.from_numpy(read_idx(DEBIAN_DIR / "t10k-images-idx3-ubyte.gz")[:500].copy()).unsqueeze(1)
    labels = torch.from_numpy(read_idx(DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz")[:500].astype(np.int64))
    x = build_transform(built.preprocessing, train=False)(images)
    with torch.no_grad():
        acc = 100.0 * (built.model.eval()(x).argmax(1) == labels).float().mean().item()
    assert acc >= asset_info(key)["fmnist_test_top1"] - 2.0, (key, acc)


def test_ap_on_small_vit_runs_on_digits(tmp_path):
    from apbench.run import run
    rec = run(compose("model=fmnist_vit", "dataset=digits", "dataset.train_size=40", "dataset.val_size=20",
                      "trainer=fast", "device=cpu", "method=ap", "method.layers=[3]", f"paths.root_dir={tmp_path}"))
    assert rec["status"] == "ok", rec["error"]
    assert rec["weights"]["source"] == "bundled" and rec["weights"]["tag"] == "fmnist_vit" and rec["layers"] == ["3"]
    assert rec["model"] == "vit_tiny_patch16_224" and rec["model_config"] == "fmnist_vit"
    # Closed form: a full-shape prompt on the ViT's 8x8 patch tokens + class token, width 96; head 96 x 10 + 10.
    prompt, head = (8 * 8 + 1) * 96, 96 * 10 + 10
    assert {k: rec["params"][k] for k in ("trainable", "trainable_no_head", "inserted")} == {
        "trainable": prompt + head, "trainable_no_head": prompt, "inserted": prompt}
    assert rec["data"]["test"] == 1797 - 60
    # Accuracies are whole numbers of images out of the 20 val and 1,737 test images.
    for key, n in (("val_top1", 20), ("test_top1", 1797 - 60)):
        correct = rec["metrics"][key] * n / 100
        assert abs(correct - round(correct)) < 1e-9 and 0 <= round(correct) <= n, (key, rec["metrics"][key])
    assert json.loads((tmp_path / "runs" / rec["run_id"] / "record.json").read_text()) == json.loads(json.dumps(rec))
