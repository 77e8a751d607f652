"""BitFit (Ben Zaken et al., 2022): every bias term of the backbone trains, nothing else.

Norm-layer biases count as biases (as in the paper). BatchNorm statistics stay frozen
(``bn_mode="eval"``) so the comparison with the other frozen-backbone methods is like for like.
"""
from __future__ import annotations

from .base import Adapted, MethodError, freeze_all_but, register_method


@register_method("bitfit")
def bitfit(model, head_prefixes):
    head = freeze_all_but(model, head_prefixes)
    head_ids = {id(p) for p in head}
    biases = [p for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] == "bias" and id(p) not in head_ids]
    if not biases:
        raise MethodError(f"{type(model).__name__} has no bias terms outside the head")
    for p in biases:
        p.requires_grad_(True)
    return Adapted(model, "bitfit", {"bias": biases, "head": head}, bn_mode="eval")
