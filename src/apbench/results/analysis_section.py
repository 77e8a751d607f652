"""The analyses section of ``apbench results`` (issue 17): one line per point of every analysis record
(``analysis.json``, written by ``apbench analyze``) under the folder, printed and written as CSV."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

ANALYSIS_NAME = "analysis.json"  # = apbench.analysis.analyze.ANALYSIS_NAME (not imported: no torch here)


def analysis_records(root: Path) -> list[dict]:
    out = []
    for path in sorted(Path(root).rglob(ANALYSIS_NAME)):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("kind") == "analysis" and rec.get("status") == "ok":
            out.append(rec | {"_path": str(path)})
    return out


def points_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        keys = r["cka"]["points"]
        att = r.get("attention_distance") or {}
        for i, k in enumerate(keys):
            block = int(k) if k.isdigit() else 0  # block k's output is point k
            heads = att["per_head_px"][block - 1] if att and block >= 1 else None
            rows.append({
                "analysis": r["analysis_id"], "model": r["model"], "dataset": r["dataset"], "n": r["n_images"],
                "pooled": r["cka"]["pooled"], "point": k,
                "probe_val_top1": (r.get("probe") or {}).get("val_top1", {}).get(k),
                "erf_rel": (r.get("erf") or {}).get(k, {}).get("rms_rel"),
                "attn_dist_px": sum(heads) / len(heads) if heads else None,
                "cka_vs_last": r["cka"]["debiased"][i][-1],
                "cka_prompted": (r.get("cka_prompted") or {}).get("values", {}).get(k)})
    return pd.DataFrame(rows)


def show_analyses(root: Path, out: Path) -> int:
    """Print the section and write ``analyses.csv`` to ``out``; returns the number of analyses found."""
    records = analysis_records(root)
    if not records:
        return 0
    df = points_frame(records)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "analyses.csv", index=False)
    print(f"\n## analyses ({len(records)}; debiased linear CKA, per-point probes, ERF, attention distance)\n")
    for (aid, model, dataset), g in df.groupby(["analysis", "model", "dataset"], sort=False):
        print(f"{model} on {dataset} (analysis {aid}, n={g['n'].iloc[0]}, "
              f"{'pooled' if g['pooled'].iloc[0] else 'flattened'} features):\n")
        cols = [c for c in ("point", "probe_val_top1", "erf_rel", "attn_dist_px", "cka_vs_last", "cka_prompted")
                if g[c].notna().any()]
        print(g[cols].to_markdown(index=False, floatfmt=".3f") + "\n")
    return len(records)
