"""Seeded draws shared by the generators: one random stream per (task seed, split), balanced labels."""
from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")  # written as train800, val200, test (train800val200 = train + val)


def split_rng(seed: int, split: str, stream: int = 0) -> np.random.Generator:
    """The stream of ``split`` (``stream`` tells apart independent draws of one split)."""
    return np.random.default_rng([seed, SPLITS.index(split), stream])


def balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, each of the ``k`` classes ``n // k`` or ``n // k + 1`` times, in random order."""
    return rng.permutation(np.arange(n) % k)
