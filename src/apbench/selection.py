"""Which select point wins: the order the protocol ranks its runs by, and the retest's choice.

Single runs rank by val top-1, then val loss, then the cheaper point, then the order they were drawn.
A retest scores a point by its mean over seeds (same split): differences within the val set's noise
(one standard error of 200 images at 80 % is 2.8 points, ~6 images) are settled by more seeds, not by
the first draw.
"""
from __future__ import annotations

import math
import statistics


def _depth(key) -> float:
    """A point's depth for the tie-break: block index; ``input`` before the stem; module paths unknown (0)."""
    text = str(key)
    return -1.0 if text == "input" else float(text) if text.lstrip("-").isdigit() else 0.0


def cost_of(record: dict) -> tuple:
    """Smaller is cheaper: the deeper first trained point (a shorter backward pass, and a longer prefix
    that a cache can skip), then fewer trainable parameters. Methods whose points do not move (every
    method but AP's layer search) tie on the first and are ordered by parameters."""
    layers = record.get("layers") or []
    depth = min((_depth(k) for k in layers), default=math.inf)
    return (-depth, (record.get("params") or {}).get("trainable") or 0)


def score_of(record: dict) -> dict | None:
    """A select run's score, None when it did not finish ok (it can never win)."""
    if record.get("status") != "ok":
        return None
    m = record.get("metrics") or {}
    return {"val_top1": m.get("val_top1"), "val_loss": m.get("val_loss")}


def _valid(s) -> bool:
    return s is not None and (not isinstance(s, dict) or s.get("val_top1") is not None)


def _key(s, cost, i):
    top1, loss = (s, None) if not isinstance(s, dict) else (s.get("val_top1"), s.get("val_loss"))
    return (-top1, math.inf if loss is None else loss, cost if cost is not None else (), i)


def ranking(scores: list[dict | float | None], costs: list | None = None) -> list[int]:
    """Indices of the scored points, best first: highest val top-1, then lowest val loss, then the
    cheaper point (``costs``, as :func:`cost_of`), then the first drawn. Failed points (None) are left out."""
    ok = [i for i, s in enumerate(scores) if _valid(s)]
    return sorted(ok, key=lambda i: _key(scores[i], costs[i] if costs else None, i))


def choose(scores: list[dict | float | None], costs: list | None = None) -> int | None:
    """Index of the best point (see :func:`ranking`); None when every point failed."""
    order = ranking(scores, costs)
    return order[0] if order else None


def mean_score(scores: list[dict | None]) -> dict | None:
    """The mean val top-1 and val loss of one point's ok runs (``n`` of them); None when none is ok."""
    ok = [s for s in scores if _valid(s)]
    if not ok:
        return None
    losses = [s["val_loss"] for s in ok if s.get("val_loss") is not None]
    return {"val_top1": statistics.fmean(s["val_top1"] for s in ok),
            "val_loss": statistics.fmean(losses) if len(losses) == len(ok) else None, "n": len(ok)}
