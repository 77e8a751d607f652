"""What the search budget buys: budget curves, the ranking they imply at each budget, and the edges.

A cell's select runs (the drawn points, then the reserve: edge-rule extensions or the sampler's next
points; at the select seed, so retest seeds are left out) are its draws. The expected best val top-1
of n of them drawn without replacement (Dodge et al. 2019, "Show Your Work", EMNLP) is, with the N
values sorted v_(1) <= ... <= v_(N),

    E[max of n] = sum_i v_(i) * (C(i, n) - C(i-1, n)) / C(N, n),

the probability that the i-th smallest is the largest of n drawn. Its band resamples the N runs with
replacement (a bootstrap of the cell's own draws). The edge rule's runs are not independent draws (each
depends on the best so far), so the curve's last points show what the rule added, not a random search.
All of it reads the final records' ``hparams.selected_from`` (old records: the drawn points only).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import comb

from .rows import final_ok, label_order

RANK_AT = (2, 4, 8)  # and each cell's own N + R
BAND_RESAMPLES = 1000
BAND_SEED = 0
SELECT_PHASES = ("select", "extension", "reserve")


def expected_max(values, n: int) -> float:
    """The expected maximum of ``n`` of ``values`` drawn without replacement (formula above)."""
    v = np.sort(np.asarray(values, dtype=float))
    big_n = len(v)
    if not 1 <= n <= big_n:
        raise ValueError(f"n={n} must be between 1 and the {big_n} values")
    i = np.arange(1, big_n + 1)
    weights = (comb(i, n, exact=False) - comb(i - 1, n, exact=False)) / comb(big_n, n, exact=False)
    return float(np.dot(weights, v))


def curve(values) -> np.ndarray:
    """``expected_max`` for n = 1 .. N."""
    return np.array([expected_max(values, n) for n in range(1, len(values) + 1)])


def band(values, level: float = 0.95, resamples: int = BAND_RESAMPLES, seed: int = BAND_SEED):
    """(low, high) per n: percentiles of the curve over bootstrap resamples of the runs."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    curves = np.stack([curve(rng.choice(v, size=len(v), replace=True)) for _ in range(resamples)])
    tail = (1 - level) / 2 * 100
    return np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, axis=0)


def select_runs(selection: dict) -> list[dict]:
    """The selection's runs at the select seed, in the order run: ``{point..., val_top1, phase}``."""
    runs = selection.get("val_top1") if isinstance(selection, dict) else None
    out = []
    for r in runs if isinstance(runs, list) else []:
        if not isinstance(r, dict) or r.get("phase", "select") not in SELECT_PHASES:
            continue
        if r.get("seed") not in (None, selection.get("select_seed", 0)):
            continue
        out.append(r)
    return out


def _values(selection: dict) -> list[float]:
    return [float(r["val_top1"]) for r in select_runs(selection) if isinstance(r.get("val_top1"), (int, float))]


def cells(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, protocol, dataset, label) with the selection of its first final ok run."""
    ok = final_ok(df)
    if ok.empty or "selection" not in ok:
        return pd.DataFrame(columns=["model", "protocol", "dataset", "label", "method", "selection"])
    ok = ok[ok["selection"].map(lambda s: isinstance(s, dict) and bool(_values(s)))]
    keys = ["model", "protocol", "dataset", "label"]
    return ok.groupby(keys, dropna=False).agg(method=("method", "first"), selection=("selection", "first")).reset_index()


def curve_table(df: pd.DataFrame) -> pd.DataFrame:
    """Long form: model, protocol, dataset, label, n, expected best, band low/high."""
    rows = []
    for c in cells(df).itertuples():
        v = _values(c.selection)
        mean, (lo, hi) = curve(v), band(v)
        for n in range(1, len(v) + 1):
            rows.append({"model": c.model, "protocol": c.protocol, "dataset": c.dataset, "label": c.label,
                         "n": n, "expected_best": mean[n - 1], "band_lo": lo[n - 1], "band_hi": hi[n - 1]})
    return pd.DataFrame(rows)


def rank_tables(df: pd.DataFrame) -> dict[tuple[str, str, str], tuple[pd.DataFrame, str]]:
    """{(model, protocol, dataset): (table, note)}: each method's rank (1 = best) by its expected best
    val of n select runs, at n = 2, 4, 8 and each cell's own total; the note names the pairs whose
    order changes with n ("the ranking depends on the budget") or says it does not."""
    long = curve_table(df)
    out = {}
    if long.empty:
        return out
    for (model, protocol, dataset), part in long.groupby(["model", "protocol", "dataset"], dropna=False):
        totals = part.groupby("label")["n"].max()
        at = sorted({n for n in RANK_AT if n <= totals.max()} | set(totals))
        wide = part.pivot(index="label", columns="n", values="expected_best").reindex(columns=at)
        ranks = wide.rank(ascending=False, method="min")
        table = pd.DataFrame({f"n={n}": [f"{int(r)} ({v:.2f})" if not pd.isna(v) else "-"
                                          for r, v in zip(ranks[n], wide[n])] for n in at}, index=wide.index)
        table.insert(0, "select runs", totals.reindex(wide.index).astype(int))
        table = table.reindex(label_order(table.index)).rename_axis("method")
        out[(str(model), str(protocol), str(dataset))] = (table, _crossings(wide, ranks))
    return out


def _crossings(wide: pd.DataFrame, ranks: pd.DataFrame) -> str:
    """Whether two methods' order differs between two budgets (where both have a value), and how each
    method's rank moves with n."""
    labels = list(wide.index)
    swaps = 0
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            d = (wide.loc[a] - wide.loc[b]).dropna()
            swaps += len({np.sign(x) for x in d if x != 0}) > 1
    if not swaps:
        return "The curves do not cross at these budgets: the ranking does not depend on the budget here."
    moves = [f"{m} {' -> '.join(str(int(r)) for r in ranks.loc[m].dropna())}" for m in label_order(labels)
             if ranks.loc[m].dropna().nunique() > 1]
    cols = ", ".join(f"n={n}" for n in wide.columns)
    return (f"The ranking depends on the budget: {swaps} pair(s) of methods change order between budgets "
            f"(curves cross). Rank at {cols}: " + "; ".join(moves) + ".")


def _fmt(v) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v))
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _key_status(sel: dict) -> dict:
    """Per searched key: the edge record of the protocol, or (records from before the edge rule) one
    derived from the space, the choice and its edge flags."""
    if isinstance(sel.get("edges"), dict):
        return sel["edges"]
    from ..search_space import ordered

    flags = {f.split("=")[0] for f in sel.get("edge_flags") or []}
    out = {}
    for key, values in (sel.get("space") or {}).items():
        if not isinstance(values, list) or not ordered(values):
            continue
        chosen = (sel.get("chosen") or {}).get(key)
        at_end = chosen in (min(values), max(values))
        status = "edge unresolved" if key in flags else "natural bound" if at_end else "inside"
        out[key] = {"candidates": sorted(values), "extended": [], "chosen": chosen, "status": status}
    return out


def edge_tables(df: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """{(model, protocol, dataset): table}: per method and ordered key, the declared space, its natural
    bound, what the edge rule added, the value chosen and whether the edge is resolved."""
    out = {}
    for (model, protocol, dataset), part in cells(df).groupby(["model", "protocol", "dataset"], dropna=False):
        rows = []
        for c in part.itertuples():
            sel = c.selection
            space, bounds = sel.get("space") or {}, sel.get("bounds") or {}
            for key, e in _key_status(sel).items():
                declared = space.get(key) or []
                low, high = (bounds.get(key) or [None, None])
                rows.append({"method": c.label, "key": key,
                             "space": f"{_fmt(min(declared))} .. {_fmt(max(declared))} ({len(declared)})" if declared else "-",
                             "natural bound": f"[{'-' if low is None else _fmt(low)}, {'-' if high is None else _fmt(high)}]"
                             if key in bounds else "-",
                             "added by the edge rule": ", ".join(_fmt(v) for v in e.get("extended") or []) or "-",
                             "chosen": _fmt(e.get("chosen")), "status": e.get("status", "-")})
        if rows:
            table = pd.DataFrame(rows)
            order = {m: i for i, m in enumerate(label_order(table["method"]))}
            out[(str(model), str(protocol), str(dataset))] = table.sort_values(
                ["method", "key"], key=lambda s: s.map(order) if s.name == "method" else s).reset_index(drop=True)
    return out


# --- plots ------------------------------------------------------------------------------------------

def plot_curves(df: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per (model, protocol, dataset): every method's budget curve with its band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .tables import safe_name

    long = curve_table(df)
    paths = []
    for (model, protocol, dataset), part in (long.groupby(["model", "protocol", "dataset"], dropna=False)
                                             if not long.empty else []):
        # left: every method, lines only (eleven overlapping bands wash the panel grey); right: the top
        # few points, where the curves that matter cross, with the band of the BANDED best cells filled
        # and every cell's band at its last n as an error bar
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
        top = part.groupby("label")["expected_best"].max().max()
        last = part.sort_values("n").groupby("label").tail(1).set_index("label")
        banded = set(last["expected_best"].nlargest(BANDED).index)
        labels = label_order(part["label"])
        for k, label in enumerate(labels):
            c = part[part["label"] == label].sort_values("n")
            colour = PALETTE[k % len(PALETTE)]
            style = dict(marker=MARKERS[k % len(MARKERS)], ms=4, color=colour)
            for ax in axes:
                ax.plot(c["n"], c["expected_best"], label=label, **style)
            if label in banded:
                axes[1].fill_between(c["n"], c["band_lo"], c["band_hi"], color=colour, alpha=0.15, lw=0)
            end = last.loc[label]
            x = end["n"] + 0.12 + 0.05 * k  # side by side, right of the last point
            axes[1].errorbar([x], [end["expected_best"]], yerr=[[end["expected_best"] - end["band_lo"]],
                             [end["band_hi"] - end["expected_best"]]], fmt="none", ecolor=colour, lw=1.2,
                             capsize=2)
        axes[1].set_ylim(top - ZOOM, top + 1)
        axes[1].set_xlim(right=part["n"].max() + 0.3 + 0.05 * len(labels))
        for ax, what in zip(axes, ("every method", f"zoom: within {ZOOM:g} points of the best; bands of the top "
                                   f"{BANDED}, bars: every band at the last n")):
            ax.set(xlabel="select runs n", ylabel="expected best val top-1 of n runs (%)")
            ax.set_title(what, fontsize=9)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, ncol=2, loc="lower right")
        fig.suptitle(f"budget curves: {model}, {dataset} ({protocol}); E[max of n] without replacement "
                     "(Dodge et al. 2019), band: 95% bootstrap over the cell's runs", fontsize=10)
        fig.tight_layout()
        path = out / f"budget-{safe_name(f'{model}-{protocol}-{dataset}')}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


MARKERS = "osD^v<>pP*Xh"
# tab10 and then colours none of it holds: with tab10 alone the 11th method (a CNN table has 11 cells)
# took the 1st one's blue, and at 4-pt markers the two lines read as one.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#000000", "#b8860b", "#00008b", "#ff1493")
ZOOM = 6.0  # points below the best curve's top that the zoomed panel shows
BANDED = 3  # cells whose bootstrap band the zoomed panel fills (more overlap into a grey wash)


PHASE_STYLE = {"select": ("o", "C0", "drawn"), "reserve": ("s", "C2", "reserve: sampler"),
               "extension": ("^", "C3", "reserve: edge rule"), "retest": (".", "C7", "retest seeds")}


def plot_val_vs_keys(df: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per cell: val top-1 of every select-stage run against each searched key, the declared
    space's ends (dashed) and the natural bounds (solid red), the chosen value starred."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from .tables import safe_name

    paths = []
    for c in cells(df).itertuples():
        sel = c.selection
        space = {k: v for k, v in (sel.get("space") or {}).items() if isinstance(v, list) and len(v) > 1}
        runs = [r for r in sel.get("val_top1") or [] if isinstance(r, dict) and isinstance(r.get("val_top1"), (int, float))]
        if not space or not runs:
            continue
        fig, axes = plt.subplots(1, len(space), figsize=(4.2 * len(space), 3.6), squeeze=False)
        chosen = sel.get("chosen") or {}
        for ax, (key, declared) in zip(axes[0], space.items()):
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in declared)
            values = [r.get(key) for r in runs]
            cats = list(dict.fromkeys(map(_fmt, declared + values)))
            x_of = (lambda v: v) if numeric else (lambda v: cats.index(_fmt(v)))  # noqa: E731
            for phase, (marker, color, name) in PHASE_STYLE.items():
                mine = [r for r in runs if r.get("phase", "select") == phase]
                if mine:
                    ax.scatter([x_of(r.get(key)) for r in mine], [r["val_top1"] for r in mine], marker=marker,
                               color=color, s=36 if phase != "retest" else 30, label=name, zorder=3)
            if key in chosen:
                best = [r["val_top1"] for r in runs if r.get(key) == chosen[key] and r.get("phase", "select") != "retest"]
                ax.scatter([x_of(chosen[key])], [max(best) if best else ax.get_ylim()[1]], marker="*", s=220,
                           facecolor="none", edgecolor="k", lw=1.2, label="chosen", zorder=4)
            if numeric:
                positive = all(v > 0 for v in [*declared, *[v for v in values if isinstance(v, (int, float))]])
                ticks = sorted({float(v) for v in [*declared, *values] if isinstance(v, (int, float))})
                above = [t for t in ticks if t > 0]
                if positive:
                    ax.set_xscale("log")
                elif ticks[0] == 0 and len(above) > 1 and above[-1] / above[0] >= 100:  # 0 and decades: weight decays
                    ax.set_xscale("symlog", linthresh=above[0])
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xticks(ticks, [_fmt(t) for t in ticks], fontsize=7, rotation=45 if len(ticks) > 5 else 0)
                for end in (min(declared), max(declared)):
                    ax.axvline(end, color="gray", ls="--", lw=1)
                for b in (sel.get("bounds") or {}).get(key) or []:
                    if b is not None and (b > 0 or not positive):
                        ax.axvline(b, color="red", lw=1.2)
                low = ((sel.get("bounds") or {}).get(key) or [None])[0]
                note = f"declared {_fmt(min(declared))}..{_fmt(max(declared))} (dashed)"
                note += f"; natural bound {_fmt(low)} (low)" if low is not None else ""
                ax.set_title(note, fontsize=7)
            else:
                ax.set_xticks(range(len(cats)), cats, fontsize=7)
            ax.set(xlabel=key, ylabel="val top-1 (%)")
            ax.grid(alpha=0.3)
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=7, frameon=False)
        fig.suptitle(f"{c.label}: {c.model}, {c.dataset} ({c.protocol})", fontsize=9)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        path = out / f"val-vs-keys-{safe_name(f'{c.model}-{c.protocol}-{c.dataset}-{c.label}')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_budget(df: pd.DataFrame, out) -> tuple[list[Path], dict]:
    """budget-*.png, val-vs-keys-*.png, budget-ranks-*.md/.csv/.tex (with the crossing note below the
    .md's table), edges-*.md/.csv/.tex and budget_curves.csv; returns (paths, {key: (ranks, note)})."""
    from .tables import to_markdown, write_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = plot_curves(df, out) + plot_val_vs_keys(df, out)
    long = curve_table(df)
    if not long.empty:
        long.to_csv(out / "budget_curves.csv", index=False)
        paths.append(out / "budget_curves.csv")
    ranks = rank_tables(df)
    for (model, protocol, dataset), (table, note) in ranks.items():
        written = write_table(table, out, f"budget-ranks-{model}-{protocol}-{dataset}")
        written[0].write_text(to_markdown(table) + f"\n\n{note}\n")
        paths += written
    for (model, protocol, dataset), table in edge_tables(df).items():
        paths += write_table(table, out, f"edges-{model}-{protocol}-{dataset}", index=False)
    return paths, ranks
