"""How noisy is a choice made on 200 val images, and how much retesting settles it (issue 24 item 2)?

Read from the CPU study's own select runs (val only; no test number is used): every cell of the
methods table (8 points) and of the layer sweep (4 points). Two views:

1. Bootstrap of the val images. A record keeps a select run's val top-1, not its per-image answers,
   so each point's 200 val answers are resampled as Binomial(200, p) with p its observed val top-1,
   independently per point. This overstates the noise of a *difference* (the points answer the same
   images, and their answers are positively correlated), so the rates below are upper bounds. How often
   does the best of the resampled values differ from the observed choice, and how often is the
   resampled best outside the observed top k?
2. The retest as a procedure, simulated with the observed values as the truth and one Binomial(200, p)
   draw per run (the noise of one training run scored on 200 images; a retrained seed draws again):
   choose the best single draw (no retest), or retrain the top k of the first draws with s further
   seeds and take the best mean. Reported: how often the truly best point is chosen, and the mean
   regret (true val of the best minus that of the chosen), for each (k, s), beside what it costs (k x s runs).

    PYTHONPATH=src python scripts/study_retest_analysis.py [--draws 4000] [--out results/cpu-lite0-fmnist1k/retest-analysis.md]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "results" / "cpu-lite0-fmnist1k"
VAL_IMAGES = 200
KS = (2, 3, 4)
SEEDS = (1, 2, 3)


def cells(runs_dir: Path) -> dict[str, list[float]]:
    """label -> the val top-1 of each select point, from the final records' selections (one per cell)."""
    out = {}
    for p in sorted(runs_dir.glob("*/record.json")):
        r = json.loads(p.read_text())
        sel = (r.get("hparams") or {}).get("selected_from")
        sel = sel[0] if isinstance(sel, list) else sel
        if r.get("stage") != "final" or r.get("status") != "ok" or not isinstance(sel, dict):
            continue
        m = (r.get("config") or {}).get("method") or {}
        label = "+".join(str(x) for x in [r["method"], m.get("variant"), m.get("head")] if x not in (None, "linear", "auto"))
        if r["method"] == "ap" and "method.layers" not in (sel.get("space") or {}):
            label += f"@{','.join(r.get('layers') or [])}"
        runs = [v["val_top1"] for v in sel.get("val_top1") or [] if v.get("phase", "select") != "retest"]
        out.setdefault(label, [float(v) for v in runs if v is not None])
    return out


def observed_rank(values: np.ndarray) -> np.ndarray:
    return np.argsort(-values, kind="stable")  # ties: the first drawn, as the protocol


def bootstrap(values: list[float], draws: int, rng) -> dict:
    p = np.asarray(values) / 100
    sims = rng.binomial(VAL_IMAGES, p, size=(draws, len(p))) / VAL_IMAGES * 100
    best = np.argmax(sims + 1e-9 * -np.arange(len(p)), axis=1)  # ties: the first drawn
    order = observed_rank(np.asarray(values))
    return {"changes": float(np.mean(best != order[0])),
            **{f"outside_top{k}": float(np.mean(~np.isin(best, order[:k]))) for k in KS}}


def procedure(values: list[float], k: int, s: int, draws: int, rng) -> tuple[float, float]:
    """(P(the truly best point is chosen), mean regret in val points) of: top k by a first draw, s more
    draws each, best mean (k = 0: the best first draw)."""
    truth = np.asarray(values) / 100
    best_true = truth.max()
    first = rng.binomial(VAL_IMAGES, truth, size=(draws, len(truth))) / VAL_IMAGES
    tie = 1e-9 * -np.arange(len(truth))
    if k == 0:
        chosen = np.argmax(first + tie, axis=1)
    else:
        top = np.argsort(-(first + tie), axis=1, kind="stable")[:, :k]
        more = rng.binomial(VAL_IMAGES, truth[top][..., None], size=(draws, k, s)) / VAL_IMAGES
        means = (np.take_along_axis(first, top, axis=1) + more.sum(axis=2)) / (1 + s)
        chosen = np.take_along_axis(top, np.argmax(means + tie[:k], axis=1)[:, None], axis=1)[:, 0]
    picked = truth[chosen]
    return float(np.mean(picked == best_true)), float(np.mean(best_true - picked) * 100)


def report(draws: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    groups = {"methods table (8 points per cell)": cells(STUDY / "runs"),
              "layer sweep (4 points per cell)": cells(STUDY / "layer-sweep" / "runs")}
    lines = ["# Retest: how much a choice on 200 val images moves, from the study's own val records", "",
             f"`scripts/study_retest_analysis.py --draws {draws}` (seed {seed}); val records only, no test number. "
             "Per-image answers are not in the records: each point's 200 answers are resampled as "
             "Binomial(200, its val top-1), independently per point, an upper bound on the noise of a difference.", ""]
    for name, cs in groups.items():
        lines += [f"## {name}: {len(cs)} cells", "", "Bootstrap of the val images (single draw, as the old protocol):", "",
                  "| cell | val of the points | top-2 gap (images) | choice changes | best outside top 2 | outside top 3 | outside top 4 |",
                  "|---|---|---|---|---|---|---|"]
        rows = []
        for label, v in sorted(cs.items()):
            b = bootstrap(v, draws, rng)
            rows.append(b)
            top = sorted(v, reverse=True)
            gap = (top[0] - top[1]) / 100 * VAL_IMAGES if len(top) > 1 else float("nan")
            lines.append(f"| {label} | {', '.join(f'{x:g}' for x in v)} | {gap:.0f} | {b['changes']:.0%} | "
                         f"{b['outside_top2']:.0%} | {b['outside_top3']:.0%} | {b['outside_top4']:.0%} |")
        mean = {key: np.mean([r[key] for r in rows]) for key in rows[0]}
        lines += [f"| **mean** | | | {mean['changes']:.0%} | {mean['outside_top2']:.0%} | {mean['outside_top3']:.0%} | "
                  f"{mean['outside_top4']:.0%} |", "",
                  "The retest as a procedure (observed values as the truth; one Binomial(200, p) draw per training run), "
                  "mean over the cells:", "",
                  "| retest | extra runs per cell | truly best chosen | mean regret (val points) |", "|---|---|---|---|"]
        for k, s in [(0, 0)] + [(k, s) for k in KS for s in SEEDS]:
            got = [procedure(v, k, s, draws, rng) for v in cs.values()]
            what = "none (best single draw)" if k == 0 else f"top {k} x {s} more seed{'s' * (s > 1)}"
            lines.append(f"| {what} | {k * s} | {np.mean([g[0] for g in got]):.0%} | {np.mean([g[1] for g in got]):.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=4000, help="resamples per cell (default 4000)")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown here as well")
    a = ap.parse_args(argv)
    text = report(a.draws)
    print(text, end="")
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
