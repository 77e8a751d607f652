"""Build a timm backbone with its weights and preprocessing from a model config."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import timm
import torch
from torch import nn

from .preprocessing import resolve_preprocessing
from .weights import BUNDLED, WeightsError, load_into, read_state_dict


@dataclass
class BuiltModel:
    model: nn.Module
    preprocessing: dict
    weights: str          # where the weights came from, for the record
    source_classes: int   # classes of the pretrained head (label mapping needs it)


def build_model(cfg: Mapping[str, Any], device: str | torch.device = "cpu") -> BuiltModel:
    """``cfg`` keys: ``name`` (timm), ``weights`` (``random`` | ``hub`` | ``bundled`` | ``file``),
    ``pretrained_tag`` (hub tag), ``bundled`` (bundled weight name), ``checkpoint`` (file path),
    ``kwargs`` (passed to ``timm.create_model``), ``preprocessing`` (overrides)."""
    name = cfg["name"]
    weights = cfg.get("weights", "random")
    kwargs = dict(cfg.get("kwargs") or {})
    if name not in timm.list_models() and name.split(".")[0] not in timm.list_models():
        raise ValueError(f"model.name {name!r} is not a timm model; see `timm.list_models('{name[:4]}*')`")
    if weights == "hub":
        tag = cfg.get("pretrained_tag")
        model = timm.create_model(f"{name}.{tag}" if tag else name, pretrained=True, **kwargs)
        source = f"hub:{name}{'.' + tag if tag else ''}"
    else:
        model = timm.create_model(name, pretrained=False, **kwargs)
        if weights == "bundled":
            key = cfg.get("bundled")
            if key not in BUNDLED:
                raise WeightsError(f"unknown bundled weights {key!r}; available: {sorted(BUNDLED)}")
            arch, loader = BUNDLED[key]
            if arch != name:
                raise WeightsError(f"bundled weights {key!r} are for {arch!r}, not {name!r}")
            load_into(model, loader(), f"bundled:{key}")
            source = f"bundled:{key}"
        elif weights == "file":
            path = cfg.get("checkpoint")
            load_into(model, read_state_dict(path), str(path), ignore_head=bool(cfg.get("ignore_head", False)))
            source = f"file:{path}"
        elif weights == "random":
            source = "random"
        else:
            raise ValueError(f"model.weights {weights!r} is not one of random, hub, bundled, file")
    preprocessing = resolve_preprocessing(model, cfg.get("preprocessing"))
    return BuiltModel(model.to(device), preprocessing, source, model.num_classes)
