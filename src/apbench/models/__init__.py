"""Backbones: timm models with their weights (``factory``, ``weights``), preprocessing and addressable
points (``layers``). Import the submodule you need: this package itself loads nothing, so that listing
commands can read ``families`` without torch."""
