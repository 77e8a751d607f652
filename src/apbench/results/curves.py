"""Learning curves per cell and the convergence check (issue 14), from the records alone.

A cell of a selection protocol is the set of final runs that share one selection; its curves are

* the chosen select run's val top-1 and train loss per epoch (select runs score val after every
  epoch; final runs train on train+val, so they have no val), and
* the train loss per epoch of each final run.

A cell counts as converged when its chosen select run's val top-1 over the last 20 % of the epochs
(at least two: one score cannot "stay", and a curve whose maximum is its last epoch would pass) stays
within 1 point of that run's maximum; one epoch of val cannot tell. A cell that does not converge needs more epochs or leaves
the headline comparison, with the reason stated.

    python -m apbench.results.curves RUNS_DIR --out OUT_DIR   # one PNG per cell + convergence.csv/.md
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import escape
from .cells import selections
from .convergence import TAIL, TOLERANCE, convergence
from .frame import model_label
from .record_check import problems
from .store import BadRecord, read_record


@dataclass
class Cell:
    label: str
    select: dict                                  # the chosen select run's record
    finals: list[dict] = field(default_factory=list)


def load_records(runs_dir: str | Path) -> list[dict]:
    out = []
    for p in sorted(Path(runs_dir).glob("*/record.json")):
        try:
            rec = read_record(p)
        except BadRecord:
            continue  # a record being written right now (the next pass sees it), or junk
        if not problems(rec):  # values no table may take (record_check): `apbench results` lists them
            out.append(rec)
    return out


def _label(rec: dict) -> str:
    m = (rec.get("config") or {}).get("method") or {}
    parts = [str(rec.get("dataset")), str(model_label(rec)), str(rec.get("method"))]
    for key in ("variant", "head", "shape", "placement"):
        if m.get(key) not in (None, "linear", "auto"):
            parts.append(f"{key}={m[key]}")
    if rec.get("layers") and rec.get("method") in ("ap", "vpt"):
        parts.append("layers=" + ",".join(map(str, rec["layers"])))
    return " ".join(parts)


def cells_of(records: list[dict]) -> list[Cell]:
    """Final runs grouped by the select run their selection chose (one protocol job = one cell)."""
    by_id = {r.get("run_id"): r for r in records}
    cells: dict[str, Cell] = {}
    for r in records:
        sel = (selections(r) or [{}])[0]  # the search that first reached this final run
        if r.get("stage") != "final" or r.get("status") != "ok" or "chosen_index" not in sel:
            continue
        chosen_id = sel["val_top1"][sel["chosen_index"]]["run_id"]
        select = by_id.get(chosen_id)
        if select is None:
            continue
        cell = cells.setdefault(chosen_id, Cell(_label(select), select))
        cell.finals.append(r)
    for c in cells.values():
        c.finals.sort(key=lambda r: r.get("seed", 0))
    return sorted(cells.values(), key=lambda c: c.label)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:150]


def plot_cell(cell: Cell, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    hist = cell.select.get("history") or []
    epochs = [h["epoch"] for h in hist]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    check = convergence(hist)
    left.plot(epochs, [h.get("val_top1") for h in hist], marker="o", ms=3, label="chosen select run")
    if check["converged"] is not None:
        left.axhline(check["max_val"] - TOLERANCE, color="gray", ls=":", lw=1, label=f"max - {TOLERANCE:g}")
        left.axvspan(epochs[-check["tail_epochs"]] - 0.5, epochs[-1] + 0.5, color="gray", alpha=0.12,
                     label=f"tail: last {check['tail_epochs']} epochs ({TAIL:.0%}, at least 2)")
    left.set(xlabel="epoch", ylabel="val top-1 (%)",
             title={True: "converged", False: "NOT converged"}.get(check["converged"])
             or ("one epoch: cannot tell" if check["max_val"] is not None else "no val"))
    left.legend(fontsize=7)
    right.plot(epochs, [h.get("train_loss") for h in hist], marker="o", ms=3, label="chosen select run (train)")
    for r in cell.finals:
        fh = r.get("history") or []
        right.plot([h["epoch"] for h in fh], [h.get("train_loss") for h in fh], lw=1,
                   label=f"final seed {r.get('seed')} (train+val)")
    right.set(xlabel="epoch", ylabel="train loss", yscale="log")
    lo, hi = right.get_ylim()
    if hi < 10 * lo:  # within a decade the minor ticks carry the only labels: plain numbers, not 2x10^0
        right.yaxis.set_minor_formatter(ScalarFormatter())
        right.yaxis.set_major_formatter(ScalarFormatter())
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    chosen = ((selections(cell.finals[0]) or [{}])[0].get("chosen", {}) if cell.finals else {})
    fig.suptitle(f"{cell.label}\nchosen: {json.dumps(chosen)}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def convergence_rows(cells: list[Cell]) -> list[dict]:
    rows = []
    for c in cells:
        check = convergence(c.select.get("history") or [])
        rows.append({"cell": c.label, "select_run": c.select.get("run_id"), **check,
                     "final_runs": len(c.finals)})
    return rows


def write(runs_dir: str | Path, out_dir: str | Path) -> list[dict]:
    """One PNG per cell and convergence.csv / convergence.md in ``out_dir``; returns the rows."""
    import csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = cells_of(load_records(runs_dir))
    rows = convergence_rows(cells)
    for c in cells:
        plot_cell(c, out / f"curve-{_slug(c.label)}.png")
    keys = ["cell", "converged", "max_val", "tail_min", "tail_epochs", "epochs", "final_runs", "select_run"]
    with open(out / "convergence.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows({k: r[k] for k in keys} for r in rows)
    lines = [f"Convergence: the chosen select run's val top-1 over the last {TAIL:.0%} of epochs (at least 2) within "
             f"{TOLERANCE:g} point of its maximum.", "", "| cell | converged | max val | min over tail | epochs |",
             "|---|---|---|---|---|"]
    for r in rows:
        fmt = (lambda v: "-" if v is None else f"{v:.2f}")
        verdict = ({True: "yes", False: "**no**"}.get(r["converged"])
                   or ("one epoch: cannot tell" if r["max_val"] is not None else "no val"))
        lines.append(f"| {escape.markdown(r['cell'])} | {verdict} | {fmt(r['max_val'])} | {fmt(r['tail_min'])} | {r['epochs']} |")
    (out / "convergence.md").write_text("\n".join(lines) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m apbench.results.curves", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", help="a folder of run folders (each with record.json)")
    ap.add_argument("--out", required=True, help="where the PNGs and convergence.csv/.md go")
    a = ap.parse_args(argv)
    rows = write(a.runs, a.out)
    bad = [r["cell"] for r in rows if r["converged"] is False]
    print(f"curves: {len(rows)} cells, {len(rows) - len(bad)} converged or without val; not converged: "
          + (", ".join(bad) if bad else "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
