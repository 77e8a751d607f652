"""What a dataset loader returns, and the registry of loaders (one per on-disk format)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch.utils.data import Dataset


class DataError(RuntimeError):
    """Data that is missing, malformed or inconsistent; the message names the file and the fix."""


class MissingData(DataError):
    """Files or folders that are not there at all (``apbench data verify`` reports these as ``missing``)."""


@dataclass
class Splits:
    """Train / val splits of one dataset, and the test split behind a function.

    The test split is opened only when ``test()`` is called, so code paths that choose
    hyper-parameters cannot read it by accident (tests spy on this).
    """

    train: Dataset
    val: Dataset
    _test: Callable[[], Dataset]
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # sizes, subsets, protocol facts for the record

    def test(self) -> Dataset:
        return self._test()


LOADERS: dict[str, Callable[..., Splits]] = {}


def register_loader(fmt: str):
    def deco(fn):
        LOADERS[fmt] = fn
        return fn
    return deco
