"""Parameter counts: total, trainable, trainable outside the classification head."""
from __future__ import annotations

from typing import Sequence

from torch import nn


def _in_head(name: str, head_prefixes: Sequence[str]) -> bool:
    # Match whole module paths: prefix "head" covers "head.weight" and "head.fc.bias", not "header.x".
    for prefix in head_prefixes:
        prefix = prefix.rstrip(".")
        if prefix and (name == prefix or name.startswith(prefix + ".")):
            return True
    return False


def count_params(model: nn.Module, head_prefixes: Sequence[str], inserted: int = 0) -> dict:
    """``total``, ``trainable``, ``trainable_no_head`` and ``inserted`` (passed through, elements).

    ``inserted`` is what the method added to the network (prompts, adapters, LoRA factors); the method
    knows it, a generic count does not. Tied parameters are counted once, under their first name.
    """
    total = trainable = trainable_no_head = 0
    for name, p in model.named_parameters():  # remove_duplicate=True: each tied tensor once
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
            if not _in_head(name, head_prefixes):
                trainable_no_head += n
    return {"total": total, "trainable": trainable, "trainable_no_head": trainable_no_head,
            "inserted": int(inserted)}
