"""Mean attention distance (issue 17): hand-computed values, and reading timm's attention weights."""
import math

import pytest
import torch

from apbench.analysis.attention_distance import attention_weights, mean_attention_distance, patch_distances


def test_attention_on_the_token_itself_has_distance_zero():
    p = 2 * 2
    attn = torch.eye(1 + p).expand(3, 2, -1, -1).clone()  # 3 images, 2 heads, class token + 2x2 patches
    out = mean_attention_distance(attn, (2, 2), (16, 16), num_prefix=1)
    assert out.tolist() == [0.0, 0.0]


def test_uniform_attention_on_a_2x2_grid_is_the_hand_computed_mean_distance():
    # Each query patch sees itself (0), two neighbours at 1 patch and the diagonal at sqrt(2) patches:
    # (0 + 1 + 1 + sqrt(2)) / 4 patch widths, the same for all four queries. Patch = 16 px.
    expected = 16 * (2 + math.sqrt(2)) / 4          # 13.6569 px
    n = 1 + 4
    attn = torch.full((1, 1, n, n), 1 / n)         # uniform over all 5 tokens, class token included
    out = mean_attention_distance(attn, (2, 2), (16, 16), num_prefix=1)
    assert out.item() == pytest.approx(expected, abs=1e-12)  # class-token mass renormalized away


def test_uniform_attention_on_a_1x3_grid_with_2px_patches():
    # Patch centres at x = 0, 2, 4 px: mean distances per query 2, 4/3, 2 -> (2 + 4/3 + 2) / 3 = 16/9.
    attn = torch.full((2, 1, 3, 3), 1 / 3)
    out = mean_attention_distance(attn, (1, 3), (2, 2), num_prefix=0)
    assert out.item() == pytest.approx(2 * 16 / 9, abs=1e-12)  # summed over the 2 images
    assert patch_distances((1, 3), (2, 2)).mean().item() == pytest.approx(16 / 9, abs=1e-12)


def test_a_token_count_that_does_not_fit_the_grid_is_refused():
    with pytest.raises(ValueError, match="expected 1 prefix"):
        mean_attention_distance(torch.ones(1, 1, 6, 6), (2, 2), (1, 1), num_prefix=1)


def test_weights_are_read_with_fused_attention_off_and_the_model_is_restored(make_tiny):
    vit = make_tiny("vit").eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    fused_before = [b.attn.fused_attn for b in vit.blocks]
    with torch.no_grad():
        ref = vit(x)
        with attention_weights(vit) as store:
            out = vit(x)
    assert [b.attn.fused_attn for b in vit.blocks] == fused_before
    assert torch.allclose(out, ref, atol=1e-5)  # the unfused path computes the same function
    assert sorted(store) == list(range(len(vit.blocks)))
    n = 1 + vit.patch_embed.num_patches
    w = store[0][0]
    assert w.shape == (2, vit.blocks[0].attn.num_heads, n, n)
    assert torch.allclose(w.sum(-1), torch.ones(2, w.shape[1], n), atol=1e-5)  # softmax rows
    with torch.no_grad():
        vit(x)
    assert len(store[0]) == 1  # hooks removed on exit
