"""The convergence check of issue 14, on one run's per-epoch history.

A cell counts as converged when its chosen select run's val top-1 over the last 20 % of the epochs (at
least two: one score cannot "stay", and a curve whose maximum is its last epoch would pass) stays within
1 point of that run's maximum. A cell that does not converge needs more epochs or leaves the headline
comparison, with the reason stated. Its own module because both the record frame (the methods table's
``converged`` column) and the learning-curve plots use it.
"""
from __future__ import annotations

import math

TAIL = 0.2        # the last 20 % of the epochs
TOLERANCE = 1.0   # points of val top-1


def convergence(history: list[dict], tail: float = TAIL, tolerance: float = TOLERANCE) -> dict:
    """``{"converged", "max_val", "tail_min", "tail_epochs", "epochs"}`` for one run's per-epoch history;
    ``converged`` is None when the history has no val scores (a final run, or an old record) or only one."""
    vals = [h.get("val_top1") for h in history]
    if len(vals) < 2 or any(v is None for v in vals):
        best = vals[0] if len(vals) == 1 and vals[0] is not None else None
        return {"converged": None, "max_val": best, "tail_min": best, "tail_epochs": 0, "epochs": len(vals)}
    k = max(2, math.ceil(tail * len(vals)))
    best, tail_min = max(vals), min(vals[-k:])
    return {"converged": tail_min >= best - tolerance, "max_val": best, "tail_min": tail_min,
            "tail_epochs": k, "epochs": len(vals)}
