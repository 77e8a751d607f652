"""Effective receptive field (issue 17): the radius in closed form, and the support at a ViT's point 0."""
import math

import pytest
import torch

from apbench.analysis.erf import gradient_map, rms_radius
from apbench.models.layers import resolve_layers


def test_rms_radius_of_one_pixel_is_zero_and_of_two_pixels_half_their_distance():
    m = torch.zeros(9, 9, dtype=torch.float64)
    m[4, 4] = 3.0
    assert rms_radius(m) == 0.0
    m[4, 6] = 3.0  # two equal pixels 2 px apart: each is 1 px from the centroid
    assert rms_radius(m) == pytest.approx(1.0, abs=1e-12)
    u = torch.ones(4, 4, dtype=torch.float64)  # uniform k x k square: sqrt(2 (k^2 - 1) / 12)
    assert rms_radius(u) == pytest.approx(math.sqrt(2 * 15 / 12), abs=1e-12)


def test_vit_point_0_erf_is_exactly_the_centre_patch(make_tiny):
    vit = make_tiny("vit").eval()  # 32 px, patch 8: a 4x4 grid, centre patch (2, 2) = pixels 16..23
    (p0,) = resolve_layers(vit, [0])
    g = gradient_map(vit, p0, torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    nz = g.nonzero()
    assert nz[:, 0].min().item() == 16 and nz[:, 0].max().item() == 23
    assert nz[:, 1].min().item() == 16 and nz[:, 1].max().item() == 23
    assert all(p.grad is None for p in vit.parameters())  # only the input gradient is taken


def test_cnn_stem_erf_lies_inside_the_centre_units_theoretical_receptive_field(make_tiny):
    # tiny_resnet stem: conv 7x7 stride 2 pad 3, then maxpool 3x3 stride 2 pad 1 -> an 8x8 map at 32 px.
    # Centre unit (4, 4): maxpool rows 2*4-1..2*4+1 = 7..9 of the conv map; conv row j sees pixels
    # 2j-3..2j+3, so pixels 11..21 -- an 11-px window (7 + 2*2).
    net = make_tiny("resnet").eval()
    (p0,) = resolve_layers(net, [0])
    g = gradient_map(net, p0, torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    nz = g.nonzero()
    assert len(nz) > 0
    assert nz.min().item() >= 11 and nz.max().item() <= 21
