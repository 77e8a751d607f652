"""Small models pretrained here: a CNN and a ViT trained from scratch on Fashion-MNIST (32 px).

They stand in for ImageNet backbones on machines without internet access; the weights and a JSON of
how they were made (architecture, recipe, train time, Fashion-MNIST test accuracy) are committed in
``apbench/assets/``. Rebuild with ``scripts/pretrain_fmnist.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SMALL = {"fmnist_cnn": "resnet18", "fmnist_vit": "vit_tiny_patch16_224"}  # bundled key -> timm name


def asset_info(key: str) -> dict:
    """The JSON written next to the weights by the pretraining script."""
    return json.loads((ASSETS / f"{key}.json").read_text())


def weights_path(key: str) -> Path:
    """The committed checkpoint; ``models.weights`` reads it (and registers it as bundled)."""
    return ASSETS / f"{key}.pth"
