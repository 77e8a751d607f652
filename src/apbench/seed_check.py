"""What a seed may be: one check for ``seed`` and every seed a protocol names (its final seeds, the
select seed, the sampler's seed), in a module without torch so that ``apbench plan`` can use it."""
from __future__ import annotations

from .errors import ConfigError

SEED_MAX = 2**32 - 1  # NumPy's legacy seeding takes 32 bits; the loader derives seed * 100003 + epoch in 64


def check_seed(value, key: str = "seed") -> int:
    """``value`` when it is an integer from 0 to ``SEED_MAX``, else a ConfigError naming ``key``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be an integer")
    if not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{key}={value} is out of range: a seed is an integer from 0 to {SEED_MAX} (2**32 - 1)")
    return value
