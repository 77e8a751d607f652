"""Methods: one module per method, one line in ``catalog.py``, one YAML in conf/method/.

    >>> from apbench import methods
    >>> adapted = methods.apply(model, "ap", layers=[8])   # an Adapted with the trainable set

Importing the package is cheap; the registry (every method module, and torch) loads on first use of
one of its names, so ``apbench methods`` lists the catalog without torch.
"""
from __future__ import annotations

from .catalog import CATALOG

_REGISTRY = {"apply", "Adapted", "MethodError", "METHODS", "head_prefixes_of", "HEADS", "HeadError", "setup_head",
             "check_family"}


def __getattr__(name: str):
    if name in _REGISTRY:
        from . import registry
        return getattr(registry, name)
    raise AttributeError(f"module 'apbench.methods' has no attribute {name!r}")


__all__ = ["CATALOG", *sorted(_REGISTRY)]
