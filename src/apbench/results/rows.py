"""Which rows of the records frame a table counts, and the order its columns and layers take: the
names every table, plot and statistic shares, in a module below all of them."""
from __future__ import annotations

import re

ACC = "metrics.test_top1"


def final_ok(df):
    """Runs that report test accuracy: finished ok in the final stage (selection runs never do), with
    ``dataset`` as the row label (``dataset_label``: the name plus what tells apart two datasets of
    one name, e.g. two image folders)."""
    ok = df[(df["status"] == "ok") & (df["stage"] == "final")]
    return ok.assign(dataset=ok["dataset_label"]) if "dataset_label" in ok else ok


# What every table (and console) built from fixed-protocol runs of several methods says (issue 26 item 7):
# each number is one run at its recipe's default point, not a tuned result.
UNTUNED_NOTE = ("single untuned runs: under protocol=fixed each method ran once, at the default point of its "
                "recipe (no lr or weight decay searched), so these numbers are a smoke test, not a comparison of "
                "methods. For a comparison give every method the same search budget: protocol=vtab1k (chosen on "
                "val, test over seeds) or a study preset, e.g. experiment=cpu_lite0_fmnist1k")


def untuned(df, **where) -> bool:
    """True when the final ok runs of ``df`` that match ``where`` (column=value, compared as text) hold
    fixed-protocol runs of two methods or more: a table of them compares untuned points."""
    ok = final_ok(df)
    for column, value in where.items():
        ok = ok[ok[column].astype(str) == str(value)]
    return ok.loc[ok["protocol"] == "fixed", "method"].nunique() >= 2


def layer_sort_key(layers: str) -> tuple:
    """Order layer labels as a network reads: input, then 0..N, then negatives, then module paths."""
    def part(p: str) -> tuple:
        if p == "input":
            return (0, 0, "")
        if re.fullmatch(r"-?\d+", p):
            n = int(p)
            return (1, n, "") if n >= 0 else (2, n, "")
        return (3, 0, p)
    return tuple(part(p) for p in layers.split("+")) if layers else ()


def _natural(text: str) -> tuple:
    """'lr=3e-4, x=10' sorts numbers as numbers: 1 < 10 < 100, 3e-4 < 1e-3."""
    parts = re.split(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text)
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p)


def label_order(labels) -> list[str]:
    """Columns grouped by method, then layers in network order (input, 0..N), then head, then what
    else tells cells apart (``{k=v}``, numbers in numeric order)."""
    def key(label: str):
        base, _, rest = label.partition(" {")
        m = re.fullmatch(r"([^@\[]+)(?:@([^\[]*))?(?:\[(.*)\])?", base)  # method[:variant]@layers[head]
        method, layers, head = m.groups() if m else (base, "", "")
        return (method, head or "", layer_sort_key(layers or ""), _natural(rest))
    return sorted(set(labels), key=key)
