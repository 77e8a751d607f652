"""Print the demo's comparison table and write it under results/demo/ (Markdown and CSV)."""
import sys
from pathlib import Path

from apbench.results.frame import load_records
from apbench.results.rows import UNTUNED_NOTE, untuned
from apbench.results.tables import to_markdown


def main(runs_dir: str, out_dir: str) -> int:
    df, bad = load_records(runs_dir)
    for path, reason in bad:
        print(f"skipped unreadable record {path}: {reason}", file=sys.stderr)
    if df.empty:
        print(f"no records under {runs_dir}", file=sys.stderr)
        return 2
    df = df[df["status"] == "ok"].copy()
    table = df.assign(
        layer=df["layers"].map(lambda ls: ",".join(ls) if len(ls) else "-"),
        val=df["metrics.val_top1"].round(2), test=df["metrics.test_top1"].round(2),
        trainable=df["params.trainable"].astype(int),
        train_s=df["efficiency.train_time_s"].round(1),
        memory_MB=(df["efficiency.memory_bytes"] / 1e6).round(1),
        train_img_s=df["efficiency.train_throughput"].round(1),
    )[["method", "layer", "val", "test", "trainable", "train_s", "memory_MB", "train_img_s"]]
    order = {"linear_probe": 0, "ap": 1, "full_ft": 2}
    table = table.sort_values(["method", "layer"], key=lambda s: s.map(order) if s.name == "method"
                              else s.map(lambda v: int(v) if str(v).isdigit() else -1))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = to_markdown(table, index=False)
    if untuned(df):  # each method once at one shared default recipe: say so wherever the table goes
        md += f"\n\n**Note:** {UNTUNED_NOTE}"
    (out / "table.md").write_text(md + "\n")
    table.to_csv(out / "table.csv", index=False)
    print(md)
    print(f"\nwritten: {out / 'table.md'}, {out / 'table.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
