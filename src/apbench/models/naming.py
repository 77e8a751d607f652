"""Parameter and module names: the one test of whether a name lies under a module prefix."""
from __future__ import annotations

from typing import Iterable


def under_prefixes(name: str, prefixes: Iterable[str]) -> bool:
    """True when ``name`` is one of ``prefixes`` or inside one: whole path parts only, so the prefix
    ``head`` covers ``head.weight`` and ``head.fc.bias`` but not ``header.weight``."""
    for prefix in prefixes:
        prefix = prefix.rstrip(".")
        if prefix and (name == prefix or name.startswith(prefix + ".")):
            return True
    return False
