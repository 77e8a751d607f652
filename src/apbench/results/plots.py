"""Figures from the records frame: AP accuracy across layers, and accuracy against what it costs.

One PNG per (model, protocol), one panel (row) per dataset: averaging accuracies of different
datasets into one point would hide which datasets a method has results for. Error bars are the 95 %
intervals of ``results.stats`` (test sample included) and the y range always holds them whole.
"""
from __future__ import annotations

import math
import re
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from .cells import chosen_point  # noqa: E402
from .frame import method_labels  # noqa: E402
from .rows import final_ok, label_order, layer_sort_key  # noqa: E402
from .tables import safe_name  # noqa: E402

SWEPT_METHOD = "ap"
# Methods drawn as a curve beside AP when a folder holds them at more than one layer point (a layer-wise
# sweep, e.g. norm tuning of one block per point); at one point (or "all") they stay reference lines.
LAYER_WISE_METHODS = ("norm_tuning",)
REFERENCE_METHODS = ("vp", "norm_tuning", "linear_probe", "full_ft")  # drawn as horizontal lines
MARKERS = "osD^v<>pP*Xh"
FAR_BELOW = 15.0  # points whose interval ends this far below the best are listed, not drawn
COSTS = {  # frame column -> (axis label, scale)
    "params.trainable": ("trainable parameters", 1.0),
    "efficiency.memory_bytes": ("training memory (MB, saved for backward + params/grads/optimizer)", 1e-6),
    "efficiency.step_time_s": ("train step, full model (ms, from the records)", 1e3),
}


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _points(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, protocol, dataset, label): mean accuracy with its 95 % interval, the mean
    costs, and the series a layer sweep draws it in (``ap:full``, ``ap:channel``, ...)."""
    from .stats import cell_stats

    ok = final_ok(df)
    if ok.empty:
        return pd.DataFrame()
    ok = ok.assign(series=method_labels(ok, layers=False) + ok["label"].str.partition(" {")[1]
                   + ok["label"].str.partition(" {")[2])
    keys = ["model", "protocol", "dataset", "label"]
    costs = ok.groupby(keys, dropna=False).agg(method=("method", "first"), series=("series", "first"),
                                               layers=("layers_str", "first"),
                                               **{c: (c, "mean") for c in COSTS})
    # the val score (and loss) that chose each cell's point: what names a best depth
    chosen = [_chosen_val(points, i) for points, i in zip(_col(ok, "hparams.selected_from.val_top1"),
                                                          _col(ok, "hparams.selected_from.chosen_index"))]
    ok = ok.assign(val=[v for v, _ in chosen], val_loss=[loss for _, loss in chosen])
    costs = costs.join(ok.groupby(keys, dropna=False)[["val", "val_loss"]].first())
    ci = cell_stats(df).set_index(keys)[["mean", "ci_lo", "ci_hi", "n"]]
    out = costs.join(ci).reset_index()
    # no interval known (no test count, no predictions): the bar is the point itself
    out["ci_lo"], out["ci_hi"] = out["ci_lo"].fillna(out["mean"]), out["ci_hi"].fillna(out["mean"])
    return out


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df else pd.Series([None] * len(df), index=df.index)


def _chosen_val(points, index) -> tuple[float, float]:
    """(val top-1, val loss) of the point a selection chose, NaN where the record has no selection."""
    chosen = chosen_point(points, index) or {}
    return tuple(float(chosen[k]) if chosen.get(k) is not None else float("nan") for k in ("val_top1", "val_loss"))


def best_on_val(curve: pd.DataFrame) -> str | None:
    """The layer point of a curve whose selection scored best on val (ties: the lower val loss, as the
    protocol breaks them), or None when no point has a val score. The figure marks it, so a depth is
    named by val, never by the test numbers drawn."""
    scored = curve.dropna(subset=["val"])
    if scored.empty:
        return None
    best = scored.sort_values(["val", "val_loss"], ascending=[False, True], na_position="last", kind="stable")
    return str(best["layers"].iloc[0])


def _ylim(ax, lows, highs) -> None:
    """A range that holds every error bar whole, with a little room."""
    lo, hi = float(np.nanmin(lows)), float(np.nanmax(highs))
    pad = max(0.5, 0.05 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)


def _yerr(p: pd.DataFrame) -> np.ndarray:
    return np.vstack([p["mean"] - p["ci_lo"], p["ci_hi"] - p["mean"]]).clip(min=0)


def plot_layer_sweeps(df: pd.DataFrame, out_dir: str | os.PathLike,
                      baselines: pd.DataFrame | None = None) -> list[Path]:
    """Per (model, protocol): AP test top-1 at each layer point (input first) with its 95 % interval,
    one curve per variant and head (its point best on val starred, ``best_on_val``), a layer-wise method
    (norm tuning at more than one point) as its own curve on the same axis, the reference methods as
    horizontal lines. ``baselines``: records of another
    folder (a study's methods table beside its layer sweep) whose reference methods are drawn as lines
    too; nothing else of them is drawn, and they enter no table."""
    pts = _points(df)
    if pts.empty:
        return []
    extra = _points(baselines) if baselines is not None and len(baselines) else pd.DataFrame()
    if len(extra):
        extra = extra[extra["method"].isin(REFERENCE_METHODS)]
    written = []
    protocols = pts.groupby("model")["protocol"].nunique()
    for (model, protocol), part in pts.groupby(["model", "protocol"]):
        npoints = part.groupby(["dataset", "method"])["layers"].transform("nunique")
        swept = (part["method"] == SWEPT_METHOD) | (part["method"].isin(LAYER_WISE_METHODS) & (npoints > 1))
        ap = part[swept]
        if ap.empty:
            continue
        refs = part[part["method"].isin(REFERENCE_METHODS) & ~swept]
        if len(extra):  # a label both folders hold is drawn once, from the folder plotted
            more = extra[(extra["model"] == model) & (extra["protocol"] == protocol)]
            refs = pd.concat([refs, more[~more.set_index(["dataset", "label"]).index.isin(
                refs.set_index(["dataset", "label"]).index)]], ignore_index=True)
        datasets = sorted(ap["dataset"].unique())
        most = ap.groupby("dataset")["layers"].nunique().max()
        # One panel per row: each panel's legend (its own reference values) sits to its right, where
        # in a grid it would cover the next panel.
        rows = len(datasets)
        width = max(4.5, 0.32 * most)
        fig, axes = plt.subplots(rows, 1, figsize=(width + 3, 3.8 * rows), squeeze=False)
        for ax, dataset in zip(axes.flat, datasets):
            points = ap[ap["dataset"] == dataset]  # AP and any layer-wise method: one curve per series
            order = sorted(points["layers"].unique(), key=layer_sort_key)
            x = {layer: i for i, layer in enumerate(order)}
            names = sorted(points["series"].unique())
            for j, (name, curve) in enumerate(points.groupby("series")):
                curve = curve.iloc[sorted(range(len(curve)), key=lambda i: layer_sort_key(curve["layers"].iloc[i]))]
                dodge = 0.12 * (j - (len(names) - 1) / 2)  # side by side: no bar hides another
                bars = ax.errorbar([x[k] + dodge for k in curve["layers"]], curve["mean"], yerr=_yerr(curve),
                                   marker="o", capsize=3, label=name)
                best = best_on_val(curve)
                if best is not None:
                    row = curve[curve["layers"] == best].iloc[0]
                    ax.plot([x[best] + dodge], [row["mean"]], marker="*", ms=14, mfc="none", ls="none",
                            color=bars.lines[0].get_color(),
                            label=f"{name}: best on val @{best} (val {row['val']:.1f})")
            lows, highs = list(points["ci_lo"]), list(points["ci_hi"])
            # A reference far off (e.g. VP with label mapping at half the accuracy) is listed with its
            # value instead of squashing the curves into a flat line.
            ref = refs[refs["dataset"] == dataset].set_index("label")
            near = ref[(ref["mean"] >= min(lows) - 10) & (ref["mean"] <= max(highs) + 10)]
            # references: not the AP curves' tab10 colours, and enough of them not to repeat
            palette = plt.get_cmap("Dark2").colors + plt.get_cmap("Set1").colors
            for i, label in enumerate(label_order(ref.index)):
                acc = ref.loc[label, "mean"]
                style = dict(linestyle=("--", ":", "-.")[i % 3], color=palette[i % len(palette)])
                if label in near.index:
                    ax.axhline(acc, label=f"{label} ({acc:.1f})", **style)
                else:
                    ax.plot([], [], label=f"{label} ({acc:.1f}, off scale)", **style)
            _ylim(ax, lows + list(near["mean"]), highs + list(near["mean"]))
            ax.set_xticks(range(len(order)), order, rotation=45 if len(order) > 10 else 0)
            ax.set(title=dataset, xlabel="layer point", ylabel="test top-1 (%), 95% CI")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
        others = sorted(set(ap["method"]) - {SWEPT_METHOD})
        what = "activation prompt" + "".join(f" and {m.replace('_', ' ')}" for m in others)
        height = fig.get_figheight()  # margins in inches, as in the accuracy-against-cost figure
        fig.subplots_adjust(top=1 - 0.6 / height, hspace=0.45)
        fig.suptitle(f"{model} ({protocol}): {what} by layer", y=1 - 0.15 / height)
        name = f"layers-{safe_name(str(model))}" + ("" if protocols[model] == 1 else f"-{safe_name(str(protocol))}")
        written.append(_save(fig, Path(out_dir) / f"{name}.png"))
    return written


def _short(v: float) -> str:
    return (f"{v / 1e6:.3g}M" if v >= 1e6 else f"{v / 1e3:.3g}k" if v >= 1e4
            else f"{v:.0f}" if v >= 100 else f"{v:.3g}")


def _compact(layers: list[str]) -> str:
    """'4,5,6,7,9' -> '4-7,9': runs of consecutive block indices as ranges, other names as they are."""
    parts: list[list] = []
    for name in layers:
        if re.fullmatch(r"\d+", name) and parts and isinstance(parts[-1][1], int) and int(name) == parts[-1][1] + 1:
            parts[-1][1] = int(name)
        else:
            parts.append([name, int(name) if re.fullmatch(r"\d+", name) else None])
    return ",".join(a if b is None or str(b) == a else f"{a}-{b}" for a, b in parts)


LABEL_OFFSETS = ((2, 4), (2, -12), (-14, 4), (-14, -12))  # points from the marker, tried in order


def _absorb(group: tuple, mine: list, renderer) -> None:
    """Relabel ``group`` with its names; a grown label that now overlaps another of ``mine`` takes it in
    too, until none overlaps."""
    while True:
        group[1].sort(key=layer_sort_key)
        group[0].set_text(_compact(group[1]))
        box = group[0].get_window_extent(renderer)
        other = next((m for m in mine if m is not group and m[0].get_window_extent(renderer).overlaps(box)), None)
        if other is None:
            return
        mine.remove(other)
        other[0].remove()
        group[1].extend(other[1])


def _layer_labels(ax, xs, ys, layers, colour, placed: list) -> None:
    """Each AP point's layer next to it (a series in layer order). A label that would overlap one of the
    same series joins it ('4-16': AP's parameter count barely changes with depth, so a sweep's points
    crowd together); one that would overlap another series' label tries the other corners. ``placed``
    holds the axes' labels so far (the series share it). Call once the limits are final."""
    renderer = ax.figure.canvas.get_renderer()
    mine: list[tuple] = []  # (artist, names) of this series
    def label(x, y, text, offset):
        return ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", fontsize=6, color=colour,
                           rotation=45)
    for x, y, name in zip(xs, ys, layers):
        for offset in LABEL_OFFSETS:
            art = label(x, y, name, offset)
            box = art.get_window_extent(renderer)
            same = next((m for m in mine if m[0].get_window_extent(renderer).overlaps(box)), None)
            if same is not None:
                art.remove()
                same[1].append(name)
                _absorb(same, mine, renderer)
                break
            if not any(b.get_window_extent(renderer).overlaps(box) for b in placed) or offset == LABEL_OFFSETS[-1]:
                mine.append((art, [name]))
                break
            art.remove()
    placed.extend(a for a, _ in mine)


def _far_below(p: pd.DataFrame) -> pd.Series:
    """The points to list rather than draw: their interval ends ``FAR_BELOW`` under the best mean and
    would stretch the range the others span by more than a tenth (a point that fits is drawn)."""
    far = p["ci_hi"] < p["mean"].max() - FAR_BELOW
    if far.all() or not far.any():
        return far
    lo, hi = p.loc[~far, "ci_lo"].min(), p.loc[~far, "ci_hi"].max()
    return far & (p["ci_lo"] < lo - 0.1 * (hi - lo))


def pareto_front(cost, acc) -> list[int]:
    """Indices of the points no other point beats on both (lower cost and higher accuracy), by cost."""
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -acc[i]))
    front, best = [], -math.inf
    for i in order:
        if acc[i] > best:
            front.append(i)
            best = acc[i]
    return front


def _fit_legend(fig, ax, handles, loc_anchor) -> None:
    """A legend beside ``ax`` in as many columns as it takes to be no taller than the axes."""
    fig.canvas.draw()
    height = ax.get_window_extent().height
    for ncol in range(1, 8):
        leg = ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=loc_anchor,
                        ncol=ncol, borderaxespad=0.0)
        fig.canvas.draw()
        if leg.get_window_extent().height <= height:
            return


def plot_accuracy_vs_costs(df: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Per (model, protocol): test top-1 (95 % interval) against trainable parameters, training memory
    and step time (log x), one row per dataset, with the Pareto front; AP's cells one connected
    series per variant, each point labelled by its layer; the other methods one marker each."""
    pts = _points(df)
    if pts.empty:
        return []
    written = []
    for (model, protocol), part in pts.groupby(["model", "protocol"]):
        datasets = sorted(part["dataset"].unique())
        series = sorted(part.loc[part["method"] == SWEPT_METHOD, "series"].unique())
        singles = label_order(part.loc[part["method"] != SWEPT_METHOD, "label"].unique())
        colours = plt.get_cmap("tab20").colors  # 20 distinct; with the markers every label differs
        style = {s: ("o", colours[(2 * i) % 20]) for i, s in enumerate(series)}
        style |= {lab: (MARKERS[(i + 1) % len(MARKERS)], colours[(2 * (i + len(series)) + (i + len(series)) // 10) % 20])
                  for i, lab in enumerate(singles)}
        costs = {c: v for c, v in COSTS.items() if (part[c] > 0).any()}  # a cost no record has: no panel
        if not costs:
            continue
        fig, axes = plt.subplots(len(datasets), len(costs), figsize=(5.2 * len(costs), 4.2 * len(datasets)),
                                 squeeze=False)
        below: dict[str, float] = {}  # label -> mean, for points listed in the legend rather than drawn
        below_in_series: dict[str, str] = {}  # such a label -> its AP series
        for row, dataset in zip(axes, datasets):
            here = part[part["dataset"] == dataset]
            for ax, (col, (xlabel, scale)) in zip(row, costs.items()):
                p = here[here[col] > 0]  # log axis; a cost not recorded is not plotted
                if p.empty:
                    ax.text(0.5, 0.5, f"no records with {col}", ha="center", transform=ax.transAxes)
                    continue
                xs = p[col] * scale
                front = pareto_front(list(xs), list(p["mean"]))
                # Points far below the best (e.g. VP behind a label mapping) are listed with their
                # value rather than drawn: the range then resolves the rest, and no bar is cut.
                far = _far_below(p)
                shown = p[~far]
                to_label = []
                for s in series:
                    c = shown[shown["series"] == s]
                    c = c.iloc[sorted(range(len(c)), key=lambda i: layer_sort_key(c["layers"].iloc[i]))]
                    ax.errorbar(c[col] * scale, c["mean"], yerr=_yerr(c), marker="o", ms=4, capsize=2,
                                lw=1, color=style[s][1], zorder=3)
                    to_label.append((list(c[col] * scale), list(c["mean"]), list(c["layers"]), style[s][1]))
                for lab in singles:
                    c = shown[shown["label"] == lab]
                    if len(c):
                        ax.errorbar(c[col] * scale, c["mean"], yerr=_yerr(c), marker=style[lab][0], ms=6,
                                    capsize=2, linestyle="", color=style[lab][1], zorder=3)
                # The front is over every point; its members listed below the range are not drawn
                # (a line down to them would leave the axes and stretch the x range to them).
                front = [i for i in front if not far.iloc[i]]
                fx, fy = xs.iloc[front].to_numpy(), p["mean"].iloc[front].to_numpy()
                ax.step(fx, fy, where="post", color="0.4", linestyle="--", lw=1, zorder=2)
                ax.set_xscale("log")
                if xs.max() < 100 * xs.min():  # within two decades one power of 10 or none is in view: label 1, 2, 5 x 10^k
                    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
                ax.xaxis.set_minor_formatter(NullFormatter())
                _ylim(ax, shown["ci_lo"], shown["ci_hi"])
                ax.get_xlim()  # settles the log axis's autoscaled limits, which the labels' placement reads
                placed: list = []
                for args in to_label:
                    _layer_labels(ax, *args, placed)
                if far.any() and len(datasets) == 1:  # one dataset: the legend says it, off the data
                    below |= dict(zip(p.loc[far, "label"], p.loc[far, "mean"]))
                    below_in_series |= {lab: s for lab, s in zip(p.loc[far, "label"], p.loc[far, "series"])
                                        if s in series}
                elif far.any():
                    low = p[far].sort_values("mean", ascending=False)
                    listed = "\n".join(f"{lab}: {m:.1f} at {_short(x * scale)}"
                                        for lab, m, x in zip(low["label"], low["mean"], low[col]))
                    ax.text(0.98, 0.02, f"below the range:\n{listed}", transform=ax.transAxes, ha="right",
                            va="bottom", fontsize=6, bbox=dict(facecolor="white", alpha=0.8, lw=0.3))
                ax.set(title=dataset, xlabel=xlabel, ylabel="test top-1 (%), 95% CI")
                ax.grid(alpha=0.3, which="both")
        def series_label(s: str) -> str:
            low = [f"{lab} {below[lab]:.1f}" for lab in label_order(below_in_series) if below_in_series[lab] == s]
            return f"{s} (points: layer" + (f"; {', '.join(low)} below the range)" if low else ")")
        handles = [plt.Line2D([], [], marker="o", color=style[s][1], label=series_label(s)) for s in series]
        handles += [plt.Line2D([], [], linestyle="", marker=style[lab][0], color=style[lab][1],
                               label=lab if lab not in below else f"{lab} ({below[lab]:.1f}, below the range)")
                    for lab in singles]
        handles.append(plt.Line2D([], [], linestyle="--", color="0.4", label="Pareto front"))
        _fit_legend(fig, axes[0][-1], handles, (1.03, 1.0))
        # Fixed inches, not figure fractions: with one row per dataset the default margins leave a
        # blank band of inches above the first row and put each title on the row above's axis label.
        height = fig.get_figheight()
        fig.subplots_adjust(top=1 - 0.6 / height, hspace=0.45)
        fig.suptitle(f"{model} ({protocol}): accuracy against cost", y=1 - 0.15 / height)
        name = f"acc_vs_cost-{safe_name(str(model))}-{safe_name(str(protocol))}.png"
        written.append(_save(fig, Path(out_dir) / name))
    return written


def write_plots(df: pd.DataFrame, out_dir: str | os.PathLike, baselines: pd.DataFrame | None = None) -> list[Path]:
    """Every figure into ``out_dir``; ``baselines``: see ``plot_layer_sweeps``."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return plot_layer_sweeps(df, out_dir, baselines) + plot_accuracy_vs_costs(df, out_dir)
