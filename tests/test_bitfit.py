"""BitFit: all biases and nothing else (closed-form counts)."""
from __future__ import annotations

import pytest

from apbench import methods

from conftest import tiny_model

# tiny_resnet: convs have no bias; BN biases 2880 (see test_norm_tuning); head 5130.
# tiny_vit (width 32, mlp 128): patch_embed.proj 32 | per block norm1 32, qkv 96, proj 32, norm2 32,
# fc1 128, fc2 32 = 352, ×2 blocks | final norm 32  -> 768; head 330.
@pytest.mark.parametrize("family,expected", [("resnet", 2880 + 5130), ("vit", 32 + 2 * 352 + 32 + 330)])
def test_trainable_counts_match_closed_form(family, expected):
    model = tiny_model(family)
    adapted = methods.apply(model, "bitfit")
    assert sum(p.numel() for p in adapted.trainable()) == expected
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    head = methods.head_prefixes_of(model)[0]
    assert all(n.endswith(".bias") or n.startswith(head + ".") for n in trainable)
    assert adapted.bn_mode == "eval"
