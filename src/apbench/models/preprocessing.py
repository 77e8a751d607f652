"""A backbone's own preprocessing (timm ``pretrained_cfg``), with config overrides, as plain data."""
from __future__ import annotations

from typing import Any, Mapping

from timm.data import resolve_data_config

KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def resolve_preprocessing(model, overrides: Mapping[str, Any] | None = None) -> dict:
    """Model defaults from ``pretrained_cfg`` (as timm resolves them), then non-null overrides.

    ``image_size`` is a shorthand override for ``input_size=(3, s, s)``.
    """
    cfg = resolve_data_config({}, model=model)
    out = {k: cfg[k] for k in KEYS if k in cfg}
    for k, v in dict(overrides or {}).items():
        if v is None:
            continue
        if k == "image_size":
            out["input_size"] = (out["input_size"][0], int(v), int(v))
        elif k in KEYS:
            out[k] = tuple(v) if isinstance(v, (list, tuple)) or hasattr(v, "__len__") and not isinstance(v, str) else v
        else:
            raise ValueError(f"unknown preprocessing key {k!r}; valid: image_size, {', '.join(KEYS)}")
    out["input_size"] = tuple(int(x) for x in out["input_size"])
    out["mean"] = tuple(float(x) for x in out["mean"])
    out["std"] = tuple(float(x) for x in out["std"])
    return out
