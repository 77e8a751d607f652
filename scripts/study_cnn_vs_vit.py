"""CNN vs ViT: where does an activation prompt work best? A layer study on sklearn digits.

    PYTHONPATH=src python scripts/study_cnn_vs_vit.py --jobs 2   # select, final, report (resumable)
    PYTHONPATH=src python scripts/study_cnn_vs_vit.py --report   # tables and plots from the records only

For each small model pretrained here on Fashion-MNIST (``fmnist_cnn``: 8 blocks, ``fmnist_vit``: 6
blocks) and each cell -- AP at every point (``input``, 0..N), VP (pad), norm tuning, linear probe --
the learning rate is chosen on the validation split at seed 0 (``protocol.stage=select``: those runs
never open the test split), then the chosen rate is run on three seeds in the final stage, which
reports test top-1. Every run goes through ``apbench.run.run``; records land in ``OUT/runs/`` and a
re-launch skips finished runs. ``--jobs 2`` runs the two models in two single-threaded processes.
Writes ``OUT/selection-<model>.json``, ``OUT/table.{md,csv}``,
``OUT/depth.png`` and the standard ``apbench results`` report in ``OUT/report/``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from apbench.results.frame import load_records  # noqa: E402
from apbench.commands.results import main as report_main  # noqa: E402
from apbench.results.tables import accuracy_stats, to_markdown  # noqa: E402
from apbench.run import run  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = {"fmnist_cnn": 8, "fmnist_vit": 6}         # model config -> number of blocks N
# AdamW; chosen per cell on val at seed 0. The grid began as (3e-3, 1e-2, 3e-2); that chose its top
# edge in all 24 cells (val still rising), so it was extended upward by two values (README).
LR_GRID = (3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
SEEDS = (0, 1, 2)
# 3 epochs x 25 steps: what 2 shared CPU cores allow for 144 runs (a ViT run costs ~20 s here).
# Efficiency measures are off: this study is about accuracy, and they cost ~8 s per ViT run.
COMMON = ["dataset=digits", "device=cpu", "trainer.epochs=3", "trainer.batch_size=32",
          "trainer.warmup_epochs=0", "trainer.progress=false", "trainer.measure_efficiency=false",
          # this study's own shared schedule, pinned so the method recipes (issue 14) do not change it
          "trainer.optimizer=adamw", "trainer.weight_decay=1e-4", "trainer.scheduler=cosine", "trainer.lr_scaling=none"]
# VP's default border is 30 of 224 px (Bahng et al.); the same share of a 32-px image is ~4 px.
REFERENCES = {"vp": ["method=vp", "method.variant=pad", "method.pad_width=4", "method.init=zeros"],
              "norm_tuning": ["method=norm_tuning"], "linear_probe": ["method=linear_probe"]}


def cells(model: str) -> list[tuple[str, list[str]]]:
    points = ["input", *map(str, range(MODELS[model] + 1))]
    ap = [(f"ap@{p}", ["method=ap", f"method.layers=[{p}]"]) for p in points]
    return ap + list(REFERENCES.items())


def make_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def run_cell(model, cell_overrides, lr, seed, stage, out: Path, may_fail=False) -> dict:
    cfg = make_cfg([f"model={model}", *COMMON, *cell_overrides, f"trainer.lr={lr}", f"trainer.head_lr={lr}", f"seed={seed}",
                    f"protocol.stage={stage}", f"paths.results_dir={out / 'runs'}"])
    t0 = time.perf_counter()
    rec = run(cfg)
    m = rec.get("metrics") or {}
    print(f"[{stage}] {model:<11} {rec['method']:<12} {'+'.join(rec['layers']) or '-':<6} lr={lr:<6g} "
          f"seed={seed} {rec['status']} val={m.get('val_top1')} test={m.get('test_top1')} "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)
    if rec["status"] != "ok" and not may_fail:
        raise RuntimeError(f"run {rec['run_id']} {rec['status']}: {(rec.get('error') or {}).get('message')}")
    return rec


def select(model: str, out: Path) -> dict:
    """Best val top-1 over LR_GRID at seed 0 (ties: the smaller rate); test is never opened here.
    A rate whose run fails (e.g. a non-finite loss) counts as the worst."""
    chosen = {}
    for name, ov in cells(model):
        recs = {lr: run_cell(model, ov, lr, 0, "select", out, may_fail=True) for lr in LR_GRID}
        vals = {lr: r["metrics"]["val_top1"] if r["status"] == "ok" else None for lr, r in recs.items()}
        best = max(LR_GRID, key=lambda lr: (vals[lr] if vals[lr] is not None else -1.0, -lr))
        chosen[f"{model}/{name}"] = {"val_top1": {str(k): v for k, v in vals.items()}, "lr": best,
                                     "on_edge": best in (LR_GRID[0], LR_GRID[-1])}
    (out / f"selection-{model}.json").write_text(json.dumps(chosen, indent=1) + "\n")
    return chosen


def final(model: str, out: Path, chosen: dict) -> None:
    for name, ov in cells(model):
        for seed in SEEDS:
            run_cell(model, ov, chosen[f"{model}/{name}"]["lr"], seed, "final", out)


def depth_of(label: str, n: int):
    point = label.split("@")[1] if "@" in label else None
    return None if point is None else ("input" if point == "input" else int(point) / n)


def study_table(out: Path) -> pd.DataFrame:
    df, _ = load_records(out / "runs")
    chosen = {k: v for m in MODELS for k, v in json.loads((out / f"selection-{m}.json").read_text()).items()}
    # Only final runs at the rate chosen now count (a final run left from an older grid never does).
    cell = df["model"] + "/" + df["method"].where(df["method"] != "ap", "ap@" + df["layers_str"])
    chosen_lr = cell.map(lambda c: chosen.get(c, {}).get("lr"))
    df = df[(df["stage"] != "final") | (df["hparams.lr"] == chosen_lr)]
    stats = accuracy_stats(df)  # final-stage ok runs: mean / std / n of test top-1 per label
    prompt = df.groupby(["model", "label"])["params.trainable_no_head"].max()  # what trains besides the head
    rows = []
    for model, n in MODELS.items():
        for name, _ in cells(model):
            s = stats[(stats["model"] == model) & (stats["label"] == name)]
            # A method not swept over layers is labelled without '@' in the frame.
            label = name if not s.empty else name.split("@")[0]
            s = stats[(stats["model"] == model) & (stats["label"] == label)]
            sel = chosen[f"{model}/{name}"]
            d = depth_of(name, n)
            rows.append({"model": model, "method": name, "rel_depth": d if isinstance(d, str) or d is None
                         else round(d, 3), "lr": sel["lr"], "lr_on_edge": sel["on_edge"],
                         "val_top1_sel": sel["val_top1"][str(sel["lr"])],
                         "params_no_head": int(prompt.get((model, label), 0)),
                         "test_mean": None if s.empty else round(float(s["mean"].iloc[0]), 2),
                         "test_std": None if s.empty else round(float(s["std"].iloc[0]), 2),
                         "seeds": 0 if s.empty else int(s["n"].iloc[0])})
    return pd.DataFrame(rows)


def plot_depth(table: pd.DataFrame, path: Path) -> None:
    """Test top-1 vs relative depth (point / N) for both models; input at the left, references as lines."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    x_input = -0.12
    styles = {"vp": "--", "norm_tuning": ":", "linear_probe": "-."}
    names = {"vp": "VP (pad 4 px)", "norm_tuning": "norm tuning", "linear_probe": "linear probe"}
    for i, model in enumerate(MODELS):
        part = table[table["model"] == model]
        ap = part[part["method"].str.startswith("ap@")]
        xs = [x_input if d == "input" else d for d in ap["rel_depth"]]
        ax.errorbar(xs, ap["test_mean"], yerr=ap["test_std"], marker="os"[i], capsize=3, color=f"C{i}",
                    label=f"{model}: AP (N={MODELS[model]})")
        for _, r in part[~part["method"].str.startswith("ap@")].iterrows():
            ax.axhline(r["test_mean"], color=f"C{i}", linestyle=styles[r["method"]], alpha=0.7,
                       label=f"{model}: {names[r['method']]}")
    ax.set_xticks([x_input, 0, 0.25, 0.5, 0.75, 1.0], ["input", "0\n(stem)", "0.25", "0.5", "0.75", "1\n(last)"])
    ax.set(xlabel="AP point / N (relative depth)", ylabel="test top-1 (%), mean ± std of 3 seeds",
           title="sklearn digits: activation prompt by relative depth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def report(out: Path) -> None:
    table = study_table(out)
    table.to_csv(out / "table.csv", index=False)
    shown = table.assign(test=[f"{m:.2f} ± {s:.2f}" if pd.notna(m) else "-" for m, s in
                               zip(table["test_mean"], table["test_std"])],
                         lr=[f"{lr:g}" + ("†" if e else "") for lr, e in zip(table["lr"], table["lr_on_edge"])])
    md = to_markdown(shown[["model", "method", "rel_depth", "params_no_head", "lr", "val_top1_sel", "test", "seeds"]],
                     index=False)
    (out / "table.md").write_text(md + "\n")
    print(md)
    plot_depth(table, out / "depth.png")
    report_main([str(out / "runs"), "--out", str(out / "report")])  # the standard tables and plots
    report_main([str(out / "runs"), "--out", str(out), "--html-only"])  # the results browser, with depth.png


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/cnn-vs-vit-digits"))
    ap.add_argument("--report", action="store_true", help="only rebuild tables and plots from the records")
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    ap.add_argument("--jobs", type=int, default=1, help="2: one process per model, side by side")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not args.report and args.jobs > 1:
        # Each model's runs are independent (own selection file, own run ids): one process each.
        base = [sys.executable, __file__, "--out", str(args.out), "--threads", str(args.threads), "--no-report"]
        procs = [subprocess.Popen([*base, "--models", m]) for m in args.models]
        if any(p.wait() for p in procs):
            print("a study process failed; see its output above", file=sys.stderr)
            return 1
    elif not args.report:
        for model in args.models:
            final(model, args.out, select(model, args.out))
    if not args.report:
        print(f"study runs done in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    if not args.no_report:
        report(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
