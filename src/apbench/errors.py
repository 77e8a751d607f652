"""The errors every layer raises before work starts: a module of their own, below all others, so that
a command can name them without importing the checks (and torch) that raise them."""
from __future__ import annotations


class ConfigError(ValueError):
    """An invalid configuration; raised before anything is trained or written."""


class InputError(ConfigError):
    """Bad input found while preparing a run (data, weights, output folder), before training starts.

    Treated like a ``ConfigError`` (exit 2, no record): nothing has been trained, so a record would
    only hide the real fix, and a re-launch after the fix must not find a stale failure."""
