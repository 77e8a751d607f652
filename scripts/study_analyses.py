"""Issue 17, item 5: the analyses of `apbench analyze` on the models of the two CPU studies, related to
their AP layer sweeps. Everything lands in results/analyses/ (README there).

    PYTHONPATH=src python scripts/study_analyses.py            # prompts, analyses, report (~10 min, 2 cores)
    PYTHONPATH=src python scripts/study_analyses.py --report   # the summary figures and CSV only
    PYTHONPATH=src python scripts/study_analyses.py --plan     # `apbench plan` of the pending training (runs nothing)

1. Prompts: the seed-0 final AP runs of the published sweeps (best point and last block of each model) are
   rerun from their own records' configs into results/analyses/runs -- same run id, same training -- because
   runs made before issue 17 did not keep their trained prompt; the rerun saves it (prompt.pt) and its test
   top-1 is checked against the published record's.
2. Analyses (`apbench analyze`): unprompted (CKA between points, probes, ERF, attention distance) and, per
   prompt, CKA of prompted vs unprompted at every point.
3. Report: per model one figure with the AP sweep's test top-1 beside the analyses, and analyses.csv.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "analyses"
LITE0 = ROOT / "results" / "cpu-lite0-fmnist1k-shared-recipe"  # the first study's layer sweep
DIGITS = ROOT / "results" / "cnn-vs-vit-digits"

# model config id -> (analysis overrides, published sweep folder, AP points to retrain for prompts)
MODELS = {
    "efficientnet_lite0": (["model=efficientnet_lite0", "model.preprocessing.image_size=64", "dataset=fmnist1k"],
                           LITE0, ["0", "16"]),
    "fmnist_cnn": (["model=fmnist_cnn", "dataset=digits"], DIGITS, ["input", "8"]),
    "fmnist_vit": (["model=fmnist_vit", "dataset=digits"], DIGITS, ["input", "6"]),
}
COMMON = ["device=cpu", f"paths.root_dir={ROOT}", f"analysis.out_dir={OUT / 'records'}"]


def sweep_table(model: str) -> pd.DataFrame:
    """The published AP sweep: point -> test mean, std (final runs, 3 seeds), plus the linear probe."""
    if model == "efficientnet_lite0":
        t = pd.read_csv(LITE0 / "accuracy_long.csv")
        t = t[t["label"].str.startswith("ap:full@") | (t["label"] == "linear_probe")]
        point = t["label"].str.replace("ap:full@", "", regex=False)
        return pd.DataFrame({"point": point, "test_mean": t["mean"], "test_std": t["std"]})
    t = pd.read_csv(DIGITS / "table.csv")
    t = t[(t["model"] == model) & (t["method"].str.startswith("ap@") | (t["method"] == "linear_probe"))]
    return pd.DataFrame({"point": t["method"].str.replace("ap@", "", regex=False), "test_mean": t["test_mean"],
                         "test_std": t["test_std"], "lr": t["lr"]})


def published_record(model: str, point: str) -> dict:
    """The seed-0 final record of AP (full shape) at ``point`` at the lr the study chose."""
    folder = MODELS[model][1]
    lr = None
    if folder == DIGITS:
        t = sweep_table(model)
        lr = float(t.loc[t["point"] == point, "lr"].iloc[0])
    hits = []
    for path in (folder / "runs").glob("*/record.json"):
        r = json.loads(path.read_text())
        if (r.get("status") == "ok" and r["method"] == "ap" and r["stage"] == "final" and r["seed"] == 0
                and r["layers"] == [point] and r["config"]["method"].get("shape", "full") == "full"
                and r["config"]["model"].get("id") == model and (lr is None or r["hparams"]["lr"] == lr)):
            hits.append(r)
    if len(hits) != 1:
        raise SystemExit(f"expected one published seed-0 final AP@{point} record for {model}, found {len(hits)}")
    return hits[0]


def retrain_prompt(model: str, point: str) -> dict:
    from omegaconf import OmegaConf
    from apbench.run import run
    pub = published_record(model, point)
    cfg = OmegaConf.create(pub["config"])
    cfg.paths.results_dir = str(OUT / "runs")
    cfg.trainer.progress = False
    rec = run(cfg)
    same = rec["run_id"] == pub["run_id"]
    return {"model": model, "point": point, "run_id": rec["run_id"], "same_run_id": same,
            "published_test_top1": pub["metrics"]["test_top1"], "rerun_test_top1": rec["metrics"]["test_top1"],
            "lr": pub["hparams"]["lr"], "folder": str((OUT / "runs" / rec["run_id"]).relative_to(ROOT))}


def analyze(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from apbench.analysis.analyze import analyze as run_analysis, summary
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="analyze", overrides=[*COMMON, *overrides])
    rec = run_analysis(cfg)
    print(summary(rec), flush=True)
    if rec["status"] != "ok":
        raise SystemExit(f"analysis failed: {rec['error']['message']}")
    return rec


def run_all() -> None:
    prompts = []
    for model, (over, _, points) in MODELS.items():
        for point in points:
            prompts.append(retrain_prompt(model, point))
            print(f"[study] prompt {model} AP@{point}: rerun test {prompts[-1]['rerun_test_top1']:.2f} vs "
                  f"published {prompts[-1]['published_test_top1']:.2f}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "prompt_runs.json").write_text(json.dumps(prompts, indent=2) + "\n")
    for model, (over, _, points) in MODELS.items():
        analyze(over)
        for p in (p for p in prompts if p["model"] == model):
            # prompted vs unprompted CKA only: the probes, ERF and attention are those of the frozen model
            analyze([*over, f"analysis.prompt_run={ROOT / p['folder']}", "analysis.probe=false",
                     "analysis.erf_images=0", "analysis.attention=false"])


def records() -> list[dict]:
    out = [json.loads(p.read_text()) for p in sorted((OUT / "records").glob("*/analysis.json"))]
    return [r for r in out if r.get("status") == "ok"]


def report() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from apbench.analysis.plots import cka_heatmap, curves
    recs = records()
    for r in recs:  # redraw every record's own figures (cheap; follows plot fixes without recomputing)
        folder = OUT / "records" / r["analysis_id"]
        cka_heatmap(r, folder / "cka.png")
        curves(r, folder / "curves.png")
    rows = []
    for model in MODELS:
        base = [r for r in recs if r["model"] == model and not r.get("cka_prompted")]
        if len(base) != 1:
            raise SystemExit(f"expected one unprompted analysis of {model}, found {len(base)}; run without --report")
        b = base[0]
        prompted = [r for r in recs if r["model"] == model and r.get("cka_prompted")]
        sweep = sweep_table(model).set_index("point")
        keys = b["cka"]["points"]
        att = b.get("attention_distance")
        for i, k in enumerate(keys):
            row = {"model": model, "dataset": b["dataset"], "point": k,
                   "ap_test_mean": sweep["test_mean"].get(k), "ap_test_std": sweep["test_std"].get(k),
                   "linear_probe_test": sweep["test_mean"].get("linear_probe"),
                   "probe_val_top1": b["probe"]["val_top1"][k], "erf_rms_px": b["erf"][k]["rms_px"],
                   "erf_rms_rel": b["erf"][k]["rms_rel"], "cka_vs_last": b["cka"]["debiased"][i][-1],
                   "cka_vs_first": b["cka"]["debiased"][i][0], "cka_biased_vs_last": b["cka"]["biased"][i][-1],
                   "attn_dist_px": (float(np.mean(att["per_head_px"][int(k) - 1])) if att and k.isdigit() and int(k) >= 1
                                    else None)}
            for pr in prompted:
                row[f"cka_prompted_ap@{pr['cka_prompted']['prompt_points'][0]}"] = pr["cka_prompted"]["values"][k]
            rows.append(row)

        fig, axes = plt.subplots(1, 3 if not att else 4, figsize=(4.3 * (3 if not att else 4), 3.6))
        x = np.arange(len(keys))
        ax = axes[0]
        ap = [sweep["test_mean"].get(k, np.nan) for k in keys]
        sd = [sweep["test_std"].get(k, np.nan) for k in keys]
        ax.errorbar(x, ap, yerr=sd, fmt="o-", capsize=2, label="AP test top-1 (sweep, 3 seeds)")
        if "input" in sweep.index:
            ax.axhline(sweep.loc["input", "test_mean"], color="tab:blue", ls="--", lw=0.8, label="AP at input")
        ax.axhline(sweep.loc["linear_probe", "test_mean"], color="gray", ls=":", label="linear probe (head only)")
        ax.plot(x, [b["probe"]["val_top1"][k] for k in keys], "s-", color="tab:orange",
                label="per-point probe, val top-1")
        ax.set_ylabel("top-1 (%)")
        ax.set_title("AP sweep vs per-point probe", fontsize=10)
        ax.legend(fontsize=7)
        ax = axes[1]
        ax.plot(x, [b["erf"][k]["rms_rel"] for k in keys], "s-", color="tab:green")
        ax.set_ylabel("ERF RMS radius / image side")
        ax.set_title(f"effective receptive field ({b['erf_info']['images']} images)", fontsize=10)
        ax = axes[2]
        ax.plot(x, [b["cka"]["debiased"][i][-1] for i in range(len(keys))], "o-", label=f"vs last point")
        ax.plot(x, [b["cka"]["biased"][i][-1] for i in range(len(keys))], "o:", color="tab:blue", alpha=0.5,
                label="vs last point, biased estimator")
        for pr, c in zip(prompted, ("tab:red", "tab:purple")):
            pp = pr["cka_prompted"]["prompt_points"][0]
            ax.plot(x, [pr["cka_prompted"]["values"][k] for k in keys], "D-", color=c, ms=4,
                    label=f"AP@{pp} prompted vs frozen")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("debiased linear CKA")
        ax.set_title(f"similarity (n={b['n_images']}, flattened)", fontsize=10)
        ax.legend(fontsize=7)
        if att:
            ax = axes[3]
            per = att["per_head_px"]
            for blk, heads in enumerate(per, start=1):
                ax.scatter([blk] * len(heads), heads, s=12, color="tab:purple", alpha=0.6)
            ax.plot(range(1, len(per) + 1), [np.mean(h) for h in per], "k-", label="mean over heads")
            ax.axhline(att["uniform_px"], ls=":", color="gray", label="uniform attention")
            ax.set_ylim(0, 1.25 * max(att["uniform_px"], max(max(h) for h in per)))  # 0 = attention on itself
            ax.set_xlabel("block k (output = point k)")
            ax.set_ylabel("mean attention distance (px)")
            ax.set_title("attention distance per head", fontsize=10)
            ax.legend(fontsize=7)
        for ax in axes[:3]:
            ax.set_xticks(x, keys, fontsize=7)
            ax.set_xlabel("point")
            ax.grid(alpha=0.3)
        fig.suptitle(f"{model} on {b['dataset']} ({b['image_size']} px): analyses beside the AP layer sweep of "
                     f"{MODELS[model][1].relative_to(ROOT)}", fontsize=10)
        fig.tight_layout()
        fig.savefig(OUT / f"summary-{model}.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        for name in ("cka.png", "curves.png"):  # the analysis's own figures, copied beside the README
            src = OUT / "records" / b["analysis_id"] / name
            (OUT / f"{name[:-4]}-{model}.png").write_bytes(src.read_bytes())
    table = pd.DataFrame(rows)
    table.to_csv(OUT / "analyses.csv", index=False)
    from apbench.commands.results import main as results_main
    results_main([str(OUT / "runs"), "--out", str(OUT), "--html-only"])  # the results browser of the prompt runs
    print(table.to_markdown(index=False, floatfmt=".3f"))


DIGITS_GRID = ["dataset=digits", "protocol=vtab1k", "protocol.grid.lr=[3e-3,1e-2,3e-2,1e-1,3e-1]",
               "protocol.grid.weight_decay=[1e-4]", "trainer.epochs=3", "trainer.warmup_epochs=0",
               "trainer.progress=false"]
PENDING = {  # training item 5 asks for that was not run here (the 2 cores were shared); `--plan` costs it
    "layer-wise BN tuning, Lite0 (beside its AP sweep)":
        ["experiment=cpu_lite0_fmnist1k", "method=norm_tuning", "method.kinds=[batchnorm]",
         "method.layers=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"],
    "layer-wise BN tuning, fmnist_cnn": ["model=fmnist_cnn", *DIGITS_GRID, "method=norm_tuning",
                                         "method.layers=0,1,2,3,4,5,6,7,8"],
    "layer-wise LN tuning (the norm after each point), fmnist_vit":
        ["model=fmnist_vit", *DIGITS_GRID, "method=norm_tuning", "method.where=after", "method.layers=0,1,2,3,4,5,6"],
    "VPT-deep (10 tokens), fmnist_vit": ["model=fmnist_vit", *DIGITS_GRID, "method=vpt", "method.num_tokens=10"],
    "GatedPromptTuning (10 tokens), fmnist_vit":
        ["model=fmnist_vit", *DIGITS_GRID, "method=gated_prompt", "method.num_tokens=10"],
    "E2VPT without pruning, fmnist_vit": ["model=fmnist_vit", *DIGITS_GRID, "method=e2vpt_no_pruning"],
}


def plan(only: str | None = None) -> None:
    for label, over in PENDING.items():
        if only and only not in label:
            continue
        print(f"\n### {label}\n  apbench run -m {' '.join(over)}", flush=True)
        subprocess.run([sys.executable, "-m", "apbench", "plan", *over, f"paths.root_dir={ROOT}",
                        f"paths.results_dir={OUT / 'pending-runs'}", "--measure", "each"], check=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="store_true", help="only the summary figures and CSV")
    ap.add_argument("--plan", action="store_true", help="`apbench plan` of the pending training; runs nothing")
    ap.add_argument("--only", default=None, help="with --plan: only the groups whose label contains this text")
    a = ap.parse_args(argv)
    if a.plan:
        plan(a.only)
        return 0
    if not a.report:
        run_all()
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
