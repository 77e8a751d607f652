"""Backbones: timm models with their weights, preprocessing and addressable points."""
from .factory import BuiltModel, build_model
from .layers import LayerSpecError, list_points, resolve_layers

__all__ = ["build_model", "BuiltModel", "list_points", "resolve_layers", "LayerSpecError"]
