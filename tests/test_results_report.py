"""`apbench results DIR` end to end, and the plots, on hand-written records."""
import json

import pytest

from apbench.results.frame import load_records
from apbench.results.plots import plot_accuracy_vs_costs, plot_layer_sweeps
from apbench.commands.results import main
from apbench.results.store import write_record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def record(run_id, method, seed, acc, *, layers=(), head="linear", dataset="fmnist1k",
           status="ok", trainable=1000, error=None):
    return {
        "schema": 1, "run_id": run_id, "status": status, "dataset": dataset, "dataset_group": None,
        "protocol": "fixed", "stage": "final", "model": "effnet", "method": method, "head": head,
        "layers": list(layers), "seed": seed, "hparams": {"lr": 0.1, "edge_flags": []},
        "metrics": {"val_top1": acc, "test_top1": acc},
        "params": {"total": 10**6, "trainable": trainable, "trainable_no_head": trainable - 10},
        "efficiency": {"epoch_time_s": 1.0}, "error": error, "wall_time_s": 60.0,
    }


RECORDS = [
    *(record(f"ap-{layer}-{s}", "ap", s, acc + s, layers=[layer], trainable=500)
      for layer, acc in [("input", 50.0), ("0", 55.0), ("8", 70.0), ("12", 65.0)] for s in (0, 1, 2)),
    *(record(f"vp-{s}", "vp", s, 52.0 + s, head="flm", trainable=50_000) for s in (0, 1)),
    record("nt-0", "norm_tuning", 0, 68.0, trainable=20_000),
    record("lp-0", "linear_probe", 0, 60.0, trainable=10_000),
    record("ft-0", "full_ft", 0, 75.0, trainable=4_000_000),
    record("ft-oom", "full_ft", 1, None, status="oom",
           error={"type": "OutOfMemoryError", "message": "CUDA out of memory.\nmore detail"}),
]


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "runs"
    for r in RECORDS:
        write_record(root / r["run_id"] / "record.json", r)
    (root / "garbage").mkdir()
    (root / "garbage" / "record.json").write_bytes(b"\x00\xffnot json")
    return root


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_plots_are_png(results, tmp_path):
    df, _ = load_records(results)
    sweeps = plot_layer_sweeps(df, tmp_path)
    params = plot_accuracy_vs_costs(df, tmp_path)
    assert [p.name for p in sweeps] == ["layers-effnet.png"]
    assert [p.name for p in params] == ["acc_vs_cost-effnet-fixed.png"]
    for p in sweeps + params:
        assert_png(p)


def test_cli_writes_report_and_prints(results, capsys):
    assert main([str(results)]) == 0
    out, err = capsys.readouterr()
    assert "compute: 18 runs (17 ok, 1 oom), 18.0 min of wall-clock in total" in out  # 18 x 60 s
    assert "| fmnist1k" in out and "71.00 ± 1.00" in out  # ap@8: 70, 71, 72
    assert "| 75.00 " in out                               # full_ft, one seed: precision kept
    assert "52.50 ± 0.71" in out                           # vp[flm]: 52, 53
    assert "failures (1)" in out and "CUDA out of memory." in out and "more detail" not in out
    assert "garbage" in out and "garbage" in err              # the bad file is named, and skipped
    report = results / "report"
    for name in ("accuracy-effnet-fixed.md", "accuracy-effnet-fixed.tex", "efficiency-effnet.csv",
                 "failures.md", "bad_files.txt"):
        assert (report / name).stat().st_size > 0
    assert_png(report / "layers-effnet.png")
    assert_png(report / "acc_vs_cost-effnet-fixed.png")


def test_cli_out_and_missing_runs(results, tmp_path, capsys):
    expected = [{"dataset": "fmnist1k", "model": "effnet", "method": "full_ft", "layers": [],
                 "seed": s, "head": "linear"} for s in (0, 1)]
    (results / "expected_runs.json").write_text(json.dumps(expected))
    out_dir = tmp_path / "elsewhere"
    assert main([str(results), "--out", str(out_dir)]) == 0
    assert "missing runs (1 of 2 expected)" in capsys.readouterr().out
    assert (out_dir / "missing.csv").read_text().count("\n") == 2  # header + the oom seed
    assert not (results / "report").exists()


def test_cli_exit_codes_without_records(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "empty" / "x").mkdir(parents=True)
    (tmp_path / "empty" / "x" / "record.json").write_text("{")
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no run records" in err and "record.json" in err
