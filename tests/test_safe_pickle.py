"""CIFAR batches are unpickled only as plain data (issue 16, item 16): a crafted ``data_batch_1``
whose pickle calls ``os.system`` is refused with a clear message and its code does not run, while a
real-format copy (NumPy 1's ``numpy.core`` names, as in the published files) loads unchanged."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from apbench.data import DataError
from apbench.data.safe_pickle import RefusedPickle, load_plain
from apbench.data.torchvision_sets import read_cifar
from data_writers import cifar_arrays, write_cifar


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_real_format_copy_loads_with_the_arrays_written(tmp_path):
    folder = write_cifar(tmp_path, "cifar10", per_batch=10)
    images, labels, classes = read_cifar("cifar10", folder.parent, train=True)
    rows = np.vstack([cifar_arrays(10, 10, seed)[0] for seed in range(5)])  # the five batches' data
    assert images.shape == (50, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images[7], rows[7].reshape(3, 32, 32).transpose(1, 2, 0))
    assert labels.tolist() == [i % 10 for i in range(10)] * 5
    assert classes == [f"class{i}" for i in range(10)]


def test_numpy1_names_in_a_python2_style_pickle_load(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    raw = pickle.dumps({"data": arr, "labels": [1, 2, 3]}, protocol=2).replace(b"numpy._core", b"numpy.core")
    assert b"numpy.core.multiarray\n_reconstruct" in raw
    (tmp_path / "b").write_bytes(raw)
    out = load_plain(tmp_path / "b")
    assert np.array_equal(out["data"], arr) and out["labels"] == [1, 2, 3]


def test_a_crafted_batch_is_refused_and_its_code_does_not_run(tmp_path):
    folder = write_cifar(tmp_path, "cifar10")
    marker = tmp_path / "PWNED"
    data, labels = cifar_arrays(10, 10, 0)
    crafted = pickle.dumps({"data": data, "labels": labels, "batch_label": _RunsCode(marker)})
    pickle.loads(crafted)  # live: pickle itself runs it
    assert marker.exists()
    marker.unlink()
    (folder / "data_batch_1").write_bytes(crafted)
    with pytest.raises(RefusedPickle, match="it asks to call posix.system, which is not plain data"):
        load_plain(folder / "data_batch_1")
    with pytest.raises(DataError, match=r"data_batch_1: refused, not loaded: .*posix.system.*"
                                        r"run `apbench data prepare cifar10`"):
        read_cifar("cifar10", folder.parent, train=True)
    assert not marker.exists()
