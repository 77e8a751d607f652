"""Per-example test predictions of a final run, stored compactly in its record.

``record["predictions"] = {"split": "test", "n": N, "dtype": "uint8", "encoding": "zlib+base64",
"pred": str, "target": str}``: the predicted and the true class of every test image in the test
split's order, each as little-endian unsigned integers of the smallest width that holds the class
count, zlib-compressed, base64 text (2,000 images of 10 classes take about 1.5 kB). They let
``results.stats`` pair two methods image by image (McNemar, paired bootstrap) and bootstrap the test
sample. Why not a sidecar file: a record stays one self-contained file, written atomically as before.
"""
from __future__ import annotations

import base64
import zlib

import numpy as np

ENCODING = "zlib+base64"


def _dtype(top: int) -> str:
    return next(d for d in ("uint8", "uint16", "uint32") if top <= np.iinfo(d).max)


def _pack(values: np.ndarray, dtype: str) -> str:
    little = values.astype(np.dtype(dtype).newbyteorder("<"))
    return base64.b64encode(zlib.compress(little.tobytes(), 9)).decode()


def encode(pred, target, split: str = "test") -> dict:
    """``pred``/``target``: integer sequences (numpy arrays or tensors) of equal length."""
    pred, target = np.asarray(pred, dtype=np.int64), np.asarray(target, dtype=np.int64)
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must be 1-d and of equal length")
    if len(pred) and min(pred.min(), target.min()) < 0:
        raise ValueError("class indices must be >= 0")
    dtype = _dtype(int(max(pred.max(initial=0), target.max(initial=0))))
    return {"split": split, "n": int(len(pred)), "dtype": dtype, "encoding": ENCODING,
            "pred": _pack(pred, dtype), "target": _pack(target, dtype)}


def _unpack(text: str, dtype: str, n: int) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(text))
    out = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.int64)
    if len(out) != n:
        raise ValueError(f"predictions hold {len(out)} values, the record says n={n}")
    return out


def decode(stored: dict) -> tuple[np.ndarray, np.ndarray]:
    """(pred, target) as int64 arrays."""
    if stored.get("encoding") != ENCODING:
        raise ValueError(f"unknown predictions encoding {stored.get('encoding')!r} (expected {ENCODING!r})")
    n, dtype = int(stored["n"]), stored["dtype"]
    return _unpack(stored["pred"], dtype, n), _unpack(stored["target"], dtype, n)


def correct(stored) -> np.ndarray | None:
    """Boolean per test image (True = right), or None when the record has no predictions."""
    if not isinstance(stored, dict):
        return None
    pred, target = decode(stored)
    return pred == target
