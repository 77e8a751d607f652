"""Full fine-tuning: every weight trains, BatchNorm statistics update (the usual recipe)."""
from ..models.naming import under_prefixes
from .base import Adapted, register_method


@register_method("full_ft")
def full_finetune(model, head_prefixes):
    head, backbone = [], []
    for name, p in model.named_parameters():
        p.requires_grad_(True)
        (head if under_prefixes(name, head_prefixes) else backbone).append(p)
    return Adapted(model, "full_ft", {"backbone": backbone, "head": head}, bn_mode="train_stats")
