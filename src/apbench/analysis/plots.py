"""Figures of one analysis record: the CKA heatmaps and the per-point curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _title(rec: dict) -> str:
    return f"{rec['model']} on {rec['dataset']} ({rec['split']}, n={rec['n_images']})"


def cka_heatmap(rec: dict, path: Path) -> Path:
    cka = rec["cka"]
    keys = cka["points"]
    mats = [("debiased (unbiased HSIC)", cka["debiased"]), ("biased (plain centering)", cka["biased"])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, (name, m) in zip(axes, mats):
        arr = np.array(m, dtype=float)
        im = ax.imshow(arr, vmin=0, vmax=1, cmap="magma", origin="lower")
        if len(keys) <= 18:  # small enough to print every value
            for (i, j), v in np.ndenumerate(arr):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5 if len(keys) > 9 else 7,
                        color="white" if v < 0.6 else "black")
        ax.set_xticks(range(len(keys)), keys, fontsize=7)
        ax.set_yticks(range(len(keys)), keys, fontsize=7)
        ax.set_xlabel("point")
        ax.set_ylabel("point")
        ax.set_title(f"linear CKA, {name}", fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8)
    feat = "pooled" if cka["pooled"] else "flattened"
    fig.suptitle(f"{_title(rec)}; {feat} activations", fontsize=10)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def curves(rec: dict, path: Path) -> Path:
    keys = rec["cka"]["points"]
    x = np.arange(len(keys))
    # only the panels this record has data for (a prompted-vs-unprompted record may hold CKA alone)
    panels = ([n for n in ("probe", "erf") if rec.get(n)] + ["cka"]
              + (["attention"] if rec.get("attention_distance") else []))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    axes = axes[0]
    for ax, name in zip(axes, panels):
        if name == "probe":
            y = [rec["probe"]["val_top1"].get(k) for k in keys]
            ax.plot(x, [np.nan if v is None else v for v in y], "o-")
            ax.set_ylabel("val top-1 (%)")
            ax.set_title("linear probe on pooled features", fontsize=10)
        elif name == "erf":
            y = [rec["erf"].get(k, {}).get("rms_rel", np.nan) for k in keys]
            ax.plot(x, y, "s-", color="tab:green")
            ax.set_ylabel("ERF RMS radius / image side")
            ax.set_title("effective receptive field (Luo et al.)", fontsize=10)
        elif name == "cka":
            last = rec["cka"]["debiased"]
            ax.plot(x, [row[-1] for row in last], "o-", label=f"vs last point ({keys[-1]})")
            ax.plot(x, [row[0] for row in last], "^-", label=f"vs first point ({keys[0]})")
            pr = rec.get("cka_prompted")
            if pr:
                ax.plot(x, [pr["values"].get(k, np.nan) for k in keys], "D-", color="tab:red",
                        label=f"prompted vs not (AP at {','.join(pr['prompt_points'])})")
            ax.set_ylabel("debiased linear CKA")
            ax.set_ylim(-0.05, 1.05)
            ax.legend(fontsize=7)
            ax.set_title("layer similarity", fontsize=10)
        elif name == "attention":
            ad = rec["attention_distance"]
            blocks = np.arange(1, len(ad["per_head_px"]) + 1)
            for b, heads in zip(blocks, ad["per_head_px"]):
                ax.scatter([b] * len(heads), heads, s=12, color="tab:purple", alpha=0.6)
            ax.plot(blocks, [np.mean(h) for h in ad["per_head_px"]], "k-", label="mean over heads")
            ax.axhline(ad["uniform_px"], ls=":", color="gray", label="uniform attention")
            ax.set_ylim(0, 1.25 * max(ad["uniform_px"], max(max(h) for h in ad["per_head_px"])))  # 0 = fully local
            ax.set_xlabel("block (its output is point k)")
            ax.set_ylabel("mean attention distance (px)")
            ax.set_title("attention distance per head", fontsize=10)
            ax.legend(fontsize=7)
            continue
        ax.set_xticks(x, keys, fontsize=7)
        ax.set_xlabel("point")
        ax.grid(alpha=0.3)
    fig.suptitle(_title(rec), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
