"""The model families apbench knows how to address, as plain names (no torch): listing commands and the
method catalog read them without building a model; :mod:`apbench.models.layers` maps timm classes to them."""
FAMILIES = ("efficientnet", "resnet", "vit", "swin", "convnext")
CNN_FAMILIES = ("efficientnet", "resnet", "convnext")
TRANSFORMER_FAMILIES = ("vit", "swin")
