"""Tables from hand-written records; every expected number is worked out by hand as a literal."""
import json

import pandas as pd
import pytest

from apbench.results.frame import load_records
from apbench.results.store import write_record
from apbench.results.tables import (accuracy_tables, efficiency_tables, failures_table, load_expected,
                                    missing_runs, write_tables)


def record(run_id, dataset, method, seed, acc, *, layers=(), head="linear", model="effnet",
           protocol="fixed", group=None, stage="final", status="ok", edge=(), params=None,
           efficiency=None, error=None):
    return {
        "schema": 1, "run_id": run_id, "status": status, "dataset": dataset, "dataset_group": group,
        "protocol": protocol, "stage": stage, "model": model, "method": method, "head": head,
        "layers": list(layers), "seed": seed,
        "hparams": {"lr": 0.01, "edge_flags": list(edge)},
        "metrics": {"val_top1": acc, "test_top1": acc if stage == "final" else None},
        "params": params or {"total": 100, "trainable": 10, "trainable_no_head": 0},
        "efficiency": efficiency or {}, "error": error,
        "finished_at": "2025-01-01T00:00:00Z",
    }


def write_all(root, records):
    for r in records:
        write_record(root / r["run_id"] / "record.json", r)


FIXED = [
    # ap@8 on fmnist1k: 70, 72, 74 -> 72.00 ± 2.00
    *(record(f"ap8-{s}", "fmnist1k", "ap", s, a, layers=["8"]) for s, a in [(0, 70), (1, 72), (2, 74)]),
    # ap@input: 60, 61, 62 -> 61.00 ± 1.00
    *(record(f"apin-{s}", "fmnist1k", "ap", s, a, layers=["input"])
      for s, a in [(0, 60), (1, 61), (2, 62)]),
    # the same method with two heads: vp (linear) 40 alone; vp[flm] 50, 55, 60 -> 55.00 ± 5.00
    record("vp-0", "fmnist1k", "vp", 0, 40.0),
    *(record(f"vpflm-{s}", "fmnist1k", "vp", s, a, head="flm") for s, a in [(0, 50), (1, 55), (2, 60)]),
    # lr on the edge of its grid: 80, 80 -> 80.00 ± 0.00†
    *(record(f"ap8c-{s}", "cifar10", "ap", s, 80.0, layers=["8"], edge=["lr"]) for s in (0, 1)),
    # a selection run (no test accuracy) and a failure: neither may enter the accuracy table
    record("ap8-select", "fmnist1k", "ap", 0, 99.0, layers=["8"], stage="select"),
    record("ap12-oom", "fmnist1k", "ap", 0, None, layers=["12"], status="oom",
           error={"type": "OutOfMemoryError", "message": "CUDA out of memory\nTried to allocate 2 GiB"}),
    record("vp-fail", "cifar10", "vp", 1, None, status="failed",
           error={"type": "ValueError", "message": "bad size", "traceback": "..."}),
]

# ap@8: natural cifar100 (60, 62) and dtd 70; specialized eurosat 90; structured clevr 40, dsprites 50
VTAB = [
    record("v-c100-0", "vtab1k_cifar100", "ap", 0, 60.0, layers=["8"], protocol="vtab1k", group="natural"),
    record("v-c100-1", "vtab1k_cifar100", "ap", 1, 62.0, layers=["8"], protocol="vtab1k", group="natural"),
    record("v-dtd", "vtab1k_dtd", "ap", 0, 70.0, layers=["8"], protocol="vtab1k", group="natural"),
    record("v-euro", "vtab1k_eurosat", "ap", 0, 90.0, layers=["8"], protocol="vtab1k", group="specialized"),
    record("v-clevr", "vtab1k_clevr", "ap", 0, 40.0, layers=["8"], protocol="vtab1k", group="structured"),
    record("v-dspr", "vtab1k_dsprites", "ap", 0, 50.0, layers=["8"], protocol="vtab1k", group="structured"),
    # linear probe done on two datasets only: its summaries must say they are partial
    record("lp-c100", "vtab1k_cifar100", "linear_probe", 0, 50.0, protocol="vtab1k", group="natural"),
    record("lp-euro", "vtab1k_eurosat", "linear_probe", 0, 80.0, protocol="vtab1k", group="specialized"),
]


@pytest.fixture
def results(tmp_path):
    write_all(tmp_path, FIXED + VTAB)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "record.json").write_text('{"run_id": "x", "stat')  # truncated write
    (tmp_path / "notrec").mkdir()
    (tmp_path / "notrec" / "record.json").write_text("[1, 2, 3]")  # JSON, but not a record
    return tmp_path


def test_load_records_skips_and_reports_bad_files(results):
    df, bad = load_records(results)
    assert len(df) == len(FIXED) + len(VTAB)
    assert sorted(p.split("/")[-2] for p, _ in bad) == ["broken", "notrec"]
    row = df.set_index("run_id").loc["ap8-0"]
    assert row["metrics.test_top1"] == 70.0 and row["params.trainable"] == 10
    assert row["hparams.lr"] == 0.01 and row["label"] == "ap@8"


def test_fixed_protocol_table_exact(results):
    df, _ = load_records(results)
    tables = accuracy_tables(df)
    assert set(tables) == {("effnet", "fixed"), ("effnet", "vtab1k")}  # never mixed across protocols
    t = tables[("effnet", "fixed")]
    assert list(t.columns) == ["ap@input", "ap@8", "vp", "vp[flm]"]  # heads never share a column
    assert list(t.index) == ["cifar10", "fmnist1k"]
    assert t.loc["fmnist1k"].tolist() == ["61.00 ± 1.00 (n=3)", "72.00 ± 2.00 (n=3)", "40.00 (n=1)", "55.00 ± 5.00 (n=3)"]
    assert t.loc["cifar10"].tolist() == ["-", "80.00 ± 0.00† (n=2)", "-", "-"]


def test_vtab_group_means_exact(results):
    df, _ = load_records(results)
    t = accuracy_tables(df)[("effnet", "vtab1k")]
    assert list(t.index) == ["vtab1k_cifar100", "vtab1k_dtd", "vtab1k_eurosat", "vtab1k_clevr",
                             "vtab1k_dsprites", "mean: natural", "mean: specialized",
                             "mean: structured", "mean of groups", "mean over datasets"]
    ap = t["ap@8"]
    assert ap["vtab1k_cifar100"] == "61.00 ± 1.41 (n=2)"      # std(60, 62) = sqrt(2)
    assert ap["mean: natural"] == "65.50"                # (61 + 70) / 2
    assert ap["mean: specialized"] == "90.00"
    assert ap["mean: structured"] == "45.00"             # (40 + 50) / 2
    assert ap["mean of groups"] == "66.83"               # (65.5 + 90 + 45) / 3
    assert ap["mean over datasets"] == "62.20"           # (61 + 70 + 90 + 40 + 50) / 5
    lp = t["linear_probe"]
    assert lp["vtab1k_dtd"] == "-"
    assert lp["mean: natural"] == "50.00 (1/2)"
    assert lp["mean: specialized"] == "80.00"
    assert lp["mean: structured"] == "-"
    assert lp["mean of groups"] == "80.00 (1/3)"         # only specialized is complete
    assert lp["mean over datasets"] == "65.00 (2/5)"


def test_efficiency_table_means(tmp_path):
    eff = [{"epoch_time_s": 10.0, "train_time_s": 101.0, "memory_bytes": 2_000_000, "train_throughput": 100.0,
            "infer_throughput": 300.0, "flops_infer": 1e9},
           {"epoch_time_s": 20.0, "train_time_s": 203.0, "memory_bytes": 4_000_000, "train_throughput": 200.0,
            "infer_throughput": 500.0, "flops_infer": 1e9}]
    params = {"total": 9000, "trainable": 5000, "trainable_no_head": 4000}
    write_all(tmp_path, [record(f"lora-{i}", "d", "lora", i, 1.0, model="vit", params=params,
                                efficiency=e) for i, e in enumerate(eff)])
    df, _ = load_records(tmp_path)
    t = efficiency_tables(df)["vit"]
    assert t.loc["lora"].to_dict() == {
        "trainable params": 5000, "trainable w/o head": 4000, "train time/epoch (s)": 15.0,
        "train time (s)": 152.0, "memory (MB)": 3.0, "train throughput (img/s)": 150.0, "infer throughput (img/s)": 400.0,
        "GFLOPs (infer)": 1.0, "runs": 2}


def test_failures_table(results):
    df, _ = load_records(results)
    f = failures_table(df)
    assert f[["run_id", "status", "layers", "error"]].values.tolist() == [
        ["vp-fail", "failed", "", "bad size"],  # sorted by model, dataset: cifar10 first
        ["ap12-oom", "oom", "12", "CUDA out of memory"]]


def test_missing_runs(results):
    cell = {"dataset": "fmnist1k", "model": "effnet", "method": "ap", "head": "linear"}
    expected = [
        {**cell, "layers": ["8"], "seed": 0},
        {**cell, "layers": ["8"], "seed": 3},      # never run
        {**cell, "layers": ["12"], "seed": 0},     # ran out of memory
        {**cell, "method": "vp", "layers": [], "seed": 2, "head": "flm"},
    ]
    (results / "expected_runs.json").write_text(json.dumps(expected))
    df, _ = load_records(results)
    missing = missing_runs(df, load_expected(results))
    assert missing[["layers", "seed"]].values.tolist() == [["8", 3], ["12", 0]]


def test_duplicate_run_id_counts_once(tmp_path):
    r = record("same", "d", "ap", 0, 70.0, layers=["8"])
    write_all(tmp_path / "a", [r])
    write_all(tmp_path / "b", [r, record("other", "d", "ap", 1, 74.0, layers=["8"])])
    df, _ = load_records(tmp_path)
    assert accuracy_tables(df)[("effnet", "fixed")].loc["d", "ap"] == "72.00 ± 2.83 (n=2)"  # std(70, 74)


def test_write_tables_formats(results):
    df, bad = load_records(results)
    out = results / "report"
    written = write_tables(df, out, bad_files=bad)
    names = {p.name for p in written}
    for stem in ("accuracy-effnet-fixed", "accuracy-effnet-vtab1k", "efficiency-effnet", "failures"):
        assert {f"{stem}.md", f"{stem}.csv", f"{stem}.tex"} <= names
    assert "| fmnist1k" in (out / "accuracy-effnet-fixed.md").read_text()
    tex = (out / "accuracy-effnet-fixed.tex").read_text()
    assert r"72.00 $\pm$ 2.00" in tex and r"$^{\dagger}$" in tex and r"vp[flm]" in tex
    csv = pd.read_csv(out / "accuracy-effnet-fixed.csv", index_col=0)
    assert csv.loc["fmnist1k", "vp[flm]"] == "55.00 ± 5.00 (n=3)"
    assert (out / "bad_files.txt").read_text().count("\n") == 2


def test_variants_of_one_method_never_share_a_cell(tmp_path):
    # AP full vs per-channel at the same layer, VP pad vs expansive with the same head: four methods.
    def with_variant(r, key, value):
        return r | {"config": {"method": {"name": r["method"], key: value}}}
    write_all(tmp_path, [
        *(with_variant(record(f"apf-{s}", "fmnist1k", "ap", s, a, layers=["8"]), "shape", "full")
          for s, a in [(0, 70), (1, 72)]),                                        # 71.00 ± 1.41
        *(with_variant(record(f"apc-{s}", "fmnist1k", "ap", s, a, layers=["8"]), "shape", "channel")
          for s, a in [(0, 60), (1, 62)]),                                        # 61.00 ± 1.41
        with_variant(record("apf4", "fmnist1k", "ap", 0, 50.0, layers=["4"]), "shape", "full"),
        with_variant(record("vpp", "fmnist1k", "vp", 0, 40.0, head="flm"), "variant", "pad"),
        with_variant(record("vpe", "fmnist1k", "vp", 0, 45.0, head="flm"), "variant", "expansive"),
        record("lp", "fmnist1k", "linear_probe", 0, 30.0),                        # no config: no variant
    ])
    df, _ = load_records(tmp_path)
    table = accuracy_tables(df)[("effnet", "fixed")]
    assert list(table.columns) == ["ap:channel@8", "ap:full@4", "ap:full@8", "linear_probe",
                                   "vp:expansive[flm]", "vp:pad[flm]"]
    assert table.loc["fmnist1k"].tolist() == ["61.00 ± 1.41 (n=2)", "50.00 (n=1)", "71.00 ± 1.41 (n=2)", "30.00 (n=1)",
                                         "45.00 (n=1)", "40.00 (n=1)"]


def test_method_table_per_dataset(tmp_path):
    from apbench.results.tables import method_tables
    chose = {"val_top1": [{"lr": 0.01, "val_top1": 81.5}, {"lr": 0.1, "val_top1": 79.0}],
             "compute": {"runs": 2, "train_steps": 600, "wall_time_s": 150.0}}
    recs = [record(f"ap8-{s}", "fmnist1k", "ap", s, a, layers=["8"], protocol="vtab1k", edge=["lr=low"])
            for s, a in [(0, 70), (1, 72), (2, 74)]]                              # 72.00 ± 2.00†
    recs.append(record("lp-0", "fmnist1k", "linear_probe", 0, 65.0, protocol="vtab1k",
                       params={"total": 100, "trainable": 7, "trainable_no_head": 0}))
    for r in recs:
        r["hparams"] |= {"weight_decay": 0.0, "selected_from": chose}
    # the linear probe's optimizer holds the head alone: its `lr` (0.01 here) was never used
    recs[-1]["hparams"]["head_lr"] = 0.05
    recs[-1]["optimizer"] = {"groups": {"head": 0.05 * 8 / 256}}
    write_all(tmp_path, recs + [record("ap8-sel", "fmnist1k", "ap", 0, 99.0, layers=["8"], stage="select")])
    df, _ = load_records(tmp_path)
    table = method_tables(df)[("effnet", "vtab1k", "fmnist1k")]
    assert list(table.index) == ["ap", "linear_probe"]
    # no interval: these records say neither how many test images there were nor what was predicted
    assert list(table.columns) == ["test top-1", "seeds", "95% CI", "lr", "head lr", "wd", "val (selection)",
                                   "converged", "N select", "select steps", "select wall", "trainable params"]
    # the selection: 2 select runs, 600 steps, 150 s = 2.5 min; no chosen run named, so no convergence verdict
    assert table.loc["ap"].tolist() == ["72.00 ± 2.00\N{DAGGER}", 3, "-", "0.01", "-", "0", 81.5, "-", 2, 600,
                                        "2.5 min", 10]
    assert table.loc["linear_probe"].tolist() == ["65.00", 1, "-", "-", "0.05", "0", 81.5, "-", 2, 600, "2.5 min", 7]


def test_accuracy_cells_carry_n_and_an_interval_with_the_test_sample(tmp_path):
    # 1,000 test images each. ap (one layer, so no @8 in the label): 70, 72, 74 -> mean 72, std 2; 95 % half-width
    # 1.96 * sqrt(2^2/3 + 72 * 28 / 1000) = 1.96 * sqrt(1.3333 + 2.016) = 3.587 -> [68.41, 75.59].
    # vp: one run at 40 %: the Wilson interval of 400/1000, (p + z^2/2N)/(1 + z^2/N) -/+
    # z/(1 + z^2/N) * sqrt(p(1-p)/N + z^2/4N^2) = 40.038 -/+ 3.031 -> [37.01, 43.07].
    recs = [record(f"ap8-{s}", "fmnist1k", "ap", s, a, layers=["8"]) for s, a in [(0, 70), (1, 72), (2, 74)]]
    recs.append(record("vp-0", "fmnist1k", "vp", 0, 40.0))
    write_all(tmp_path, [r | {"data": {"test": 1000}} for r in recs])
    df, _ = load_records(tmp_path)
    row = accuracy_tables(df)[("effnet", "fixed")].loc["fmnist1k"]
    assert row.to_dict() == {"ap": "72.00 ± 2.00 (n=3) [68.41, 75.59]", "vp": "40.00 (n=1) [37.01, 43.07]"}
    assert accuracy_tables(df, interval=False)[("effnet", "fixed")].loc["fmnist1k", "ap"] == "72.00 ± 2.00"


def test_a_reshaped_architecture_is_named_by_its_model_config(tmp_path):
    """A timm architecture built with size kwargs (the bundled 1/4-width ResNet-18) is not the model its
    timm name says: tables name it by its model config; an unmodified architecture keeps its timm name."""
    small = record("small-0", "digits", "linear_probe", 0, 70.0, model="resnet18")
    small |= {"model_config": "fmnist_cnn", "config": {"model": {"kwargs": {"channels": [16, 32, 64, 128]}}}}
    plain = record("plain-0", "digits", "linear_probe", 0, 80.0, model="resnet18")
    plain |= {"model_config": "resnet18_tv", "config": {"model": {"kwargs": {}}}}
    write_all(tmp_path, [small, plain])
    df, _ = load_records(tmp_path)
    assert dict(zip(df["run_id"], df["model"])) == {"small-0": "fmnist_cnn", "plain-0": "resnet18"}
    tables = accuracy_tables(df, interval=False)
    assert sorted(tables) == [("fmnist_cnn", "fixed"), ("resnet18", "fixed")]


def test_the_console_line_names_a_reshaped_architecture_by_its_model_config():
    from apbench.commands.run import _summary
    small = record("small-0", "digits", "linear_probe", 0, 70.0, model="resnet18")
    small |= {"model_config": "fmnist_cnn", "config": {"model": {"kwargs": {"channels": [16, 32, 64, 128]}}}}
    assert _summary(small).startswith("[apbench] small-0 ok: digits fmnist_cnn linear_probe layers=- seed=0 ")


def test_a_vtab1k_table_of_no_vtab_dataset_has_no_group_rows(tmp_path):
    """The VTAB-1k protocol on a dataset of one's own (the CPU study's fmnist1k): no natural /
    specialized / structured rows of '-', no mean of one dataset."""
    recs = [record(f"lp-{s}", "fmnist1k", "linear_probe", s, 80.0 + s) for s in (0, 1)]
    for r in recs:
        r["protocol"] = "vtab1k"
    write_all(tmp_path, recs)
    df, _ = load_records(tmp_path)
    [table] = accuracy_tables(df, interval=False).values()
    assert list(table.index) == ["fmnist1k"]


def test_the_latex_table_names_the_index_in_its_header_row():
    from apbench.results.tables import _tex
    table = pd.DataFrame({"ap": ["81.0 ± 0.5"], "val": [86.0]}, index=pd.Index(["fmnist1k"], name="dataset"))
    lines = _tex(table, index=True).splitlines()
    assert lines[2].split() == ["dataset", "&", "ap", "&", "val", r"\\"]
    assert lines[4] == r"fmnist1k & 81.0 $\pm$ 0.5 & 86.0 \\"


def test_the_latex_table_prints_a_missing_value_as_the_markdown_does():
    from apbench.results.tables import MISSING_CELL, _tex, to_markdown
    table = pd.DataFrame({"train_s": [12.5, float("nan")]}, index=pd.Index(["ap", "vp"], name="method"))
    tex_rows = _tex(table, index=True).splitlines()[4:6]
    assert tex_rows == [r"ap & 12.5 \\", rf"vp & {MISSING_CELL} \\"]
    assert "nan" not in to_markdown(table).lower()


def test_a_head_lr_no_optimizer_group_used_is_shown_as_missing(tmp_path):
    """VP behind FLM/ILM maps onto the frozen source head: its optimizer has the prompt group alone, so
    the config's head_lr (0.01 here) trained nothing and the table says '-'. A record from before the
    optimizer groups were recorded keeps its head lr (nothing says it was unused)."""
    from apbench.results.tables import method_tables
    flm = [record(f"flm-{s}", "fmnist1k", "vp", s, 60.0, head="flm", protocol="vtab1k") for s in (0, 1)]
    for r in flm:
        r["hparams"] |= {"lr": 0.1, "head_lr": 0.01}
        r["optimizer"] = {"groups": {"prompt": 0.1}}
    old = record("old-0", "fmnist1k", "bitfit", 0, 70.0, protocol="vtab1k")
    old["hparams"]["head_lr"] = 0.003
    write_all(tmp_path, [*flm, old])
    df, _ = load_records(tmp_path)
    table = method_tables(df)[("effnet", "vtab1k", "fmnist1k")]
    assert table.loc["vp[flm]", ["lr", "head lr"]].tolist() == ["0.1", "-"]
    assert table.loc["bitfit", ["lr", "head lr"]].tolist() == ["0.01", "0.003"]


def test_the_methods_table_says_whether_each_cell_s_chosen_select_run_converged(tmp_path):
    """The verdict is results.convergence's on the select run the final runs' selection chose (its
    chosen_index into the scored points), not on any other select run of the cell. 10 epochs: the tail
    is the last 2. ap chose sel-b (80 -> 82 -> 78, 79: 3 points under its max: no) over sel-a (which
    converged); bitfit chose sel-c (plateau: yes); lora's chosen run is not among the records: '-'."""
    from apbench.results.tables import method_tables

    def select(run_id, vals):
        r = record(run_id, "fmnist1k", "ap", 0, vals[-1], protocol="vtab1k", stage="select")
        r["history"] = [{"epoch": e + 1, "val_top1": v, "train_loss": 1.0} for e, v in enumerate(vals)]
        return r

    sels = [select("sel-a", [50, 60, 70, 75, 78, 80, 80, 80, 80, 80]),
            select("sel-b", [50, 60, 70, 75, 78, 80, 82, 80, 78, 79]),
            select("sel-c", [40, 50, 60, 65, 70, 71, 72, 72, 71.5, 72])]

    def finals(method, chosen_index, run_ids):
        recs = [record(f"{method}-{s}", "fmnist1k", method, s, 70.0, protocol="vtab1k") for s in (0, 1)]
        for r in recs:
            r["hparams"]["selected_from"] = {"chosen_index": chosen_index,
                                             "val_top1": [{"lr": 0.01, "val_top1": 80.0, "run_id": i} for i in run_ids]}
        return recs

    write_all(tmp_path, [*sels, *finals("ap", 1, ["sel-a", "sel-b"]), *finals("bitfit", 0, ["sel-c"]),
                         *finals("lora", 0, ["gone"])])
    df, _ = load_records(tmp_path)
    table = method_tables(df)[("effnet", "vtab1k", "fmnist1k")]
    assert table["converged"].to_dict() == {"ap": "no", "bitfit": "yes", "lora": "-"}


def test_the_recipe_table_says_what_each_cell_was_trained_with(tmp_path):
    """From the records alone: VP pad at batch 32 under SGD (lr per group as applied, 1 warm-up step of a
    384-step cosine), its 20-point space drawn by halton and the edges of its choice; the linear probe's
    one group is the head, at 0.05 x 32/256. Records without an optimizer section print '-'."""
    from apbench.results.recipe_table import COLUMNS

    vp = [record(f"vp-{s}", "fmnist1k", "vp", s, 80.0, protocol="vtab1k") for s in (0, 1)]
    for r in vp:
        r["optimizer"] = {"name": "sgd", "momentum": 0.9, "groups": {"prompt": 5.0, "head": 0.001},
                          "scheduler": "cosine", "warmup_steps": 1, "milestone_steps": [], "total_steps": 384}
        r["hparams"] |= {"epochs_reference": 1000, "epochs_used": 12, "edge_flags": ["lr=low", "head_lr=low"],
                         "selected_from": {"space": {"head_lr": [0.001, 0.003, 0.01, 0.03],
                                                     "lr": [5.0, 10.0, 20.0, 40.0, 80.0]},
                                           "rule": "halton(seed=0)", "chosen": {"head_lr": 0.001, "lr": 5.0}}}
    flm = record("flm-0", "fmnist1k", "vp", 0, 60.0, head="flm", protocol="vtab1k")
    flm["optimizer"] = {"name": "adam", "groups": {"prompt": 0.1}, "scheduler": "multistep", "warmup_steps": 0,
                        "milestone_steps": [192, 276], "total_steps": 384}
    flm["hparams"] |= {"epochs_reference": 200, "epochs_used": 12,
                       "selected_from": {"space": {"lr": [0.05, 0.1]}, "rule": "grid", "chosen": {"lr": 0.1}}}
    old = record("old-0", "fmnist1k", "bitfit", 0, 70.0, protocol="vtab1k")
    write_all(tmp_path, [*vp, flm, old])
    df, _ = load_records(tmp_path)
    written = write_tables(df, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "recipes-effnet-vtab1k-fmnist1k.csv", index_col=0)
    assert tmp_path / "out" / "recipes-effnet-vtab1k-fmnist1k.md" in written
    assert list(table.columns) == COLUMNS and list(table.index) == ["bitfit", "vp", "vp[flm]"]
    assert table.loc["vp"].tolist() == [
        "sgd m 0.9 (head 0.001, prompt 5)", "cosine (1 warm-up of 384)", "1000 -> 12",
        "20 points (head_lr 4, lr 5), halton(seed=0)", "head_lr=0.001, lr=5 (edge unresolved: lr=low, head_lr=low)"]
    assert table.loc["vp[flm]"].tolist() == [
        "adam (prompt 0.1)", "multistep (0 warm-up, milestones 192/276 of 384)", "200 -> 12",
        "2 points (lr 2), grid", "lr=0.1"]
    assert table.loc["bitfit"].tolist() == ["-", "-", "- -> -", "-", "-"]
