"""Dropout and drop-path are off in frozen parts while the prompt trains (issue 8)."""
import timm
import torch

from apbench import methods


def test_dropout_and_drop_path_off_in_a_frozen_vit_during_training():
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, embed_dim=32,
                              num_heads=2, num_classes=10, drop_rate=0.5, attn_drop_rate=0.5,
                              proj_drop_rate=0.5, drop_path_rate=0.5)
    a = methods.apply(model, "ap", input_size=(3, 32, 32), layers=[1])
    a.train()
    x = torch.randn(2, 3, 32, 32)
    first, second = a.logits(x), a.logits(x)
    assert torch.equal(first, second)               # no stochastic layer is active
    assert not any(m.training for m in model.modules())
    full = methods.apply(timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2,
                                           embed_dim=32, num_heads=2, num_classes=10, drop_path_rate=0.5),
                         "full_ft", input_size=(3, 32, 32))
    full.train()
    assert not torch.equal(full.logits(x), full.logits(x))   # full fine-tuning keeps its regularizers
