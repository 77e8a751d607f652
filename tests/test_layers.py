"""The addressing scheme: closed-form point counts, shapes from hooks, the `apbench layers` listing."""

import pytest
import timm
import torch

from apbench.models.layers import LayerSpecError, list_points, num_blocks, resolve_layers
from conftest import TINY, tiny_model

# DESIGN.md "Layers": blocks per backbone (points = 1 stem + blocks).
BLOCKS = {"tf_efficientnet_lite0": 16, "resnet50": 16, "resnet101": 33, "vit_base_patch16_224": 12,
          "swin_base_patch4_window7_224": 24, "convnext_base": 36, "vit_large_patch16_224": 24}


@pytest.mark.parametrize("name,blocks", BLOCKS.items())
def test_point_counts_of_real_architectures_on_meta(name, blocks):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    assert num_blocks(model) == blocks


# Shapes at 32 px of the tiny configs (channels, then spatial or tokens), written out by hand.
TINY_SHAPES = {
    "resnet": {"input": (3, 32, 32), "0": (64, 8, 8), "1": (64, 8, 8), "2": (128, 4, 4), "4": (512, 1, 1)},
    "vit": {"input": (3, 32, 32), "0": (17, 32), "1": (17, 32), "2": (17, 32)},        # 16 patches + class
    "swin": {"input": (3, 32, 32), "0": (8, 8, 16), "1": (8, 8, 16), "2": (4, 4, 32)},  # NHWC inside
    "convnext": {"input": (3, 32, 32), "0": (8, 8, 8), "1": (8, 8, 8), "4": (64, 1, 1)},
}


@pytest.mark.parametrize("family", sorted(TINY_SHAPES))
def test_tiny_shapes_from_hooks(family):
    pts = {p.key: p.shape for p in list_points(tiny_model(family), (3, 32, 32))}
    for key, shape in TINY_SHAPES[family].items():
        assert pts[key] == shape, (family, key)


def test_efficientnet_points_and_stages():
    pts = list_points(tiny_model("efficientnet"), (3, 32, 32))
    assert [p.key for p in pts][:2] == ["input", "0"]
    assert pts[1].module_path == "bn1"
    assert all(p.stage is not None for p in pts[2:])


def test_spec_forms():
    m = tiny_model("resnet")
    key = lambda spec: [p.key for p in resolve_layers(m, spec)]
    assert key(-1) == ["4"]
    assert key("1-3") == ["1", "2", "3"]
    assert key([0, "input", "2,4"]) == ["0", "input", "2", "4"]
    assert key("all") == ["1", "2", "3", "4"]
    assert key("layer2.0") == ["2"]                      # a block's module path is that block's point
    assert key("layer2.0.bn1:input") == ["layer2.0.bn1:input"]
    with pytest.raises(LayerSpecError, match="after ':' must be 'input' or 'output'"):
        resolve_layers(m, "layer2.0.bn1:middle")


def test_cli_lists_points(capsys):
    """In-process through the entry point (its return value is the exit status; the real process is
    covered by the bad-input suite)."""
    from apbench.cli import main
    assert main(["layers", "resnet101"]) == 0
    out = capsys.readouterr().out
    assert "resnet101 (resnet101, 224 px): 34 points after the input (0 = stem, 1..33 = blocks)" in out
    assert "    33      3  layer4.2                     2048x7x7" in out
    assert main(["layers", "resnet5"]) == 2
    assert "neither a model config" in capsys.readouterr().err
