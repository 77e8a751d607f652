"""Linear probe: only the classification head trains."""
from .base import Adapted, freeze_all_but, register_method


@register_method("linear_probe")
def linear_probe(model, head_prefixes):
    head = freeze_all_but(model, head_prefixes)
    return Adapted(model, "linear_probe", {"head": head})
