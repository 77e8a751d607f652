"""Figures from the records frame: AP accuracy across layers, and accuracy against trainable parameters.

One PNG per model (layer sweep) or per (model, protocol) (parameters), one panel per dataset: averaging
accuracies of different datasets into one point would hide which datasets a method has results for.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .frame import layer_sort_key, method_labels  # noqa: E402
from .tables import ACC, safe_name, final_ok, label_order  # noqa: E402

SWEPT_METHOD = "ap"
REFERENCE_METHODS = ("vp", "norm_tuning", "linear_probe", "full_ft")  # drawn as horizontal lines
MARKERS = "osD^v<>pP*Xh"


def _panels(n: int, size: float = 3.6, width: float | None = None):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    width = width or size
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 1.5, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_layer_sweeps(df: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Per model: AP test top-1 (mean ± std over seeds) at each layer point, input first, with the
    reference methods as horizontal lines."""
    ok = final_ok(df)
    # one curve per variant and head type (e.g. ap, ap:channel, ap[flm]); the layers are the x axis
    ap = ok.assign(series=method_labels(ok, layers=False))[ok["method"] == SWEPT_METHOD]
    refs = ok[ok["method"].isin(REFERENCE_METHODS)]
    written = []
    for model, part in ap.groupby("model"):
        datasets = sorted(part["dataset"].unique())
        most = part.groupby("dataset")["layers_str"].nunique().max()
        fig, axes = _panels(len(datasets), width=max(3.6, 0.3 * most))  # room for every layer label
        for ax, dataset in zip(axes, datasets):
            points = part[part["dataset"] == dataset]
            order = sorted(points["layers_str"].unique(), key=layer_sort_key)
            x = {layer: i for i, layer in enumerate(order)}
            for name, curve in points.groupby("series"):
                s = curve.groupby("layers_str")[ACC].agg(["mean", "std"])
                s = s.loc[sorted(s.index, key=layer_sort_key)]
                ax.errorbar([x[k] for k in s.index], s["mean"], yerr=s["std"].fillna(0),
                            marker="o", capsize=3, label=name)
            ref = refs[(refs["model"] == model) & (refs["dataset"] == dataset)]
            curves = points["series"].nunique()
            refs_here = ref.groupby("label")[ACC].mean()
            # The y range follows the AP curves (and references near them); a reference far off
            # (e.g. VP with label mapping at half the accuracy) is listed with its value instead of
            # squashing the curves into a flat line.
            means = points.groupby(["series", "layers_str"])[ACC].mean()
            lo, hi = float(means.min()), float(means.max())
            near = refs_here[(refs_here >= lo - 10) & (refs_here <= hi + 10)]
            lo, hi = min([lo, *near]), max([hi, *near])
            pad = max(1.0, 0.1 * (hi - lo))
            ax.set_ylim(lo - pad, hi + pad)
            palette = plt.get_cmap("Dark2").colors  # references: not the AP curves' tab10 colours
            for i, label in enumerate(label_order(refs_here.index)):
                acc = refs_here[label]
                style = dict(linestyle=("--", ":", "-.")[i % 3], color=palette[i % len(palette)])
                if label in near.index:
                    ax.axhline(acc, label=f"{label} ({acc:.1f})", **style)
                else:
                    ax.plot([], [], label=f"{label} ({acc:.1f}, off scale)", **style)
            ax.set_xticks(range(len(order)), order, rotation=45 if len(order) > 10 else 0)
            ax.set(title=dataset, xlabel="layer point", ylabel="test top-1 (%)")
            ax.grid(alpha=0.3)
            if curves + len(refs_here) > 5:  # a long legend goes beside the axes, not over the curves
                ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
            else:
                ax.legend(fontsize="small")
        fig.suptitle(f"{model}: activation prompt by layer")
        written.append(_save(fig, Path(out_dir) / f"layers-{safe_name(str(model))}.png"))
    return written


def plot_accuracy_vs_params(df: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Per (model, protocol): test top-1 against trainable parameters (log scale), one marker per label."""
    ok = final_ok(df)
    ok = ok[ok["params.trainable"] > 0]  # log axis
    written = []
    for (model, protocol), part in ok.groupby(["model", "protocol"]):
        points = part.groupby(["dataset", "label"])[[ACC, "params.trainable"]].mean().reset_index()
        labels = label_order(points["label"])
        style = {label: (MARKERS[i % len(MARKERS)], f"C{i % 10}") for i, label in enumerate(labels)}
        datasets = sorted(points["dataset"].unique())
        fig, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            for _, p in points[points["dataset"] == dataset].iterrows():
                marker, color = style[p["label"]]
                ax.scatter(p["params.trainable"], p[ACC], marker=marker, color=color, label=p["label"])
            ax.set_xscale("log")
            ax.set(title=dataset, xlabel="trainable parameters", ylabel="test top-1 (%)")
            ax.grid(alpha=0.3, which="both")
        handles = [plt.Line2D([], [], linestyle="", marker=m, color=c, label=lab)
                   for lab, (m, c) in style.items()]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
        fig.suptitle(f"{model} ({protocol}): accuracy vs trainable parameters")
        name = f"acc_vs_params-{safe_name(str(model))}-{safe_name(str(protocol))}.png"
        written.append(_save(fig, Path(out_dir) / name))
    return written


def write_plots(df: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return plot_layer_sweeps(df, out_dir) + plot_accuracy_vs_params(df, out_dir)
