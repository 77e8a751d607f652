"""One cell = one experiment: hand-written records of each case of issue 15 item 1, and two real tiny
runs showing that the options which do not split cells leave results bit-identical."""
import copy

import pytest

from apbench.results.frame import load_records
from apbench.results.store import write_record
from apbench.results.tables import accuracy_tables, method_tables


def config(**over):
    """A resolved config as run.py stores it; ``over`` maps dotted paths to values."""
    c = {
        "dataset": {"name": "fmnist1k", "format": "fashion_mnist", "num_classes": 10, "trainval": True,
                    "cache": False, "cache_dir": None},
        "model": {"id": "efficientnet_lite0", "name": "tf_efficientnet_lite0", "weights": "bundled",
                  "checkpoint": None},
        "method": {"name": "ap", "layers": 8, "shape": "full", "head": "linear", "lr_scale": {}},
        "trainer": {"lr": 0.01, "weight_decay": 0.0, "epochs": 10, "batch_size": 32, "progress": False,
                    "prefix_cache": "auto", "prefix_cache_dir": None, "measure_efficiency": True,
                    "throughput_warmup": 3, "throughput_iters": 10, "eval_batch_size": 128},
        "protocol": {"name": "fixed", "stage": "final"},
        "paths": {"results_dir": "/a/runs", "root_dir": "/a"}, "logger": {"name": "none"},
        "seed": 0, "force": False, "device": "cpu",
    }
    for path, value in over.items():
        node = c
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return c


def rec(run_id, acc, *, seed=0, cfg=None, selected_from=None, weights=None, dataset=None, **over):
    cfg = cfg or config(seed=seed, **over)
    m = cfg["method"]
    r = {
        "schema": 1, "run_id": run_id, "status": "ok", "dataset": dataset or cfg["dataset"]["name"],
        "protocol": cfg["protocol"]["name"], "stage": "final", "model": cfg["model"]["id"],
        "method": m["name"], "head": m["head"], "layers": [str(m["layers"])] if "layers" in m else [],
        "seed": cfg["seed"], "config": cfg, "metrics": {"test_top1": acc},
        "hparams": {"lr": cfg["trainer"]["lr"]}, "params": {"trainable": 10},
        "finished_at": "2026-01-01T00:00:00Z",
    }
    if weights is not None:
        r["weights"] = weights
    if selected_from is not None:
        r["hparams"]["selected_from"] = selected_from
    return r


def frame(tmp_path, records):
    for r in records:
        write_record(tmp_path / r["run_id"] / "record.json", r)
    df, bad = load_records(tmp_path)
    assert not bad
    return df


def table(df, protocol="fixed"):  # what is grouped, not its interval (tests/test_results_tables.py)
    return accuracy_tables(df, interval=False)[("efficientnet_lite0", protocol)]


def test_seeds_alone_make_one_cell(tmp_path):
    df = frame(tmp_path, [rec(f"s{s}", a, seed=s) for s, a in [(0, 70.0), (1, 72.0), (2, 74.0)]])
    assert df["cell"].nunique() == 1
    assert table(df).loc["fmnist1k"].tolist() == ["72.00 ± 2.00"]


def test_lr_scales_are_four_cells_not_four_seeds(tmp_path):
    # The case: four AP@8 runs, same seed, different prompt lr scales -> four columns.
    df = frame(tmp_path, [rec(f"x{k}", a, **{"method.lr_scale": {"prompt": k}})
                          for k, a in [(1, 80.0), (10, 81.0), (30, 82.0), (100, 83.0)]])
    t = table(df)
    assert df["cell"].nunique() == 4
    assert list(t.columns) == ["ap {method.lr_scale.prompt=1}", "ap {method.lr_scale.prompt=10}",
                               "ap {method.lr_scale.prompt=30}", "ap {method.lr_scale.prompt=100}"]
    assert t.loc["fmnist1k"].tolist() == ["80.00", "81.00", "82.00", "83.00"]


def test_epochs_split_cells_and_label_them(tmp_path):
    df = frame(tmp_path, [rec("e10a", 70.0), rec("e10b", 72.0, seed=1),
                          rec("e20", 90.0, **{"trainer.epochs": 20})])
    t = table(df)
    assert t.loc["fmnist1k", "ap {epochs=10}"] == "71.00 ± 1.41"
    assert t.loc["fmnist1k", "ap {epochs=20}"] == "90.00"


def test_protocols_are_never_merged(tmp_path):
    lp = {"method": {"name": "linear_probe", "head": "linear", "lr_scale": {}}}
    a = config(**lp)
    b = config(**lp, protocol={"name": "vtab1k", "stage": "final"})
    df = frame(tmp_path, [rec("fixed", 60.0, cfg=a), rec("vtab", 70.0, cfg=b)])
    tables = accuracy_tables(df, interval=False)
    assert tables[("efficientnet_lite0", "fixed")].loc["fmnist1k", "linear_probe"] == "60.00"
    assert tables[("efficientnet_lite0", "vtab1k")].loc["fmnist1k", "linear_probe"] == "70.00"


def test_two_image_folders_are_two_rows(tmp_path):
    # Old records: both datasets are called image_folder; only their config tells them apart.
    def folder(root):
        return config(dataset={"name": "image_folder", "format": "image_folder", "root": root, "cache": True})
    df = frame(tmp_path, [rec("a0", 90.0, cfg=folder("/data/leaves")),
                          rec("b0", 98.0, cfg=folder("/data/scans"))])
    t = table(df)
    assert list(t.index) == ["image_folder {dataset.root=/data/leaves}", "image_folder {dataset.root=/data/scans}"]
    assert t["ap"].tolist() == ["90.00", "98.00"]


def test_datasets_named_by_i16_fields_and_digests(tmp_path):
    # New records name the folder and carry a data digest: two digests of one name are two rows.
    a = rec("a", 90.0, cfg=config(dataset={"name": "image_folder", "root": "/d"}), dataset="leaves")
    b = copy.deepcopy(a) | {"run_id": "b", "metrics": {"test_top1": 80.0}}
    a["identity"] = {"config_digest": "a", "inputs": {"weights": None, "data": "d1"}, "digest": "x"}
    b["identity"] = {"config_digest": "a", "inputs": {"weights": None, "data": "d2"}, "digest": "y"}
    t = table(frame(tmp_path, [a, b]))
    assert list(t.index) == ["leaves {inputs.data=d1}", "leaves {inputs.data=d2}"]


def test_different_weights_are_different_cells(tmp_path):
    # Same config file id, two checkpoints (i16's weights record): never averaged.
    w = lambda sha: {"source": "file", "tag": None, "path": f"/w/{sha}.pth", "sha256": sha}  # noqa: E731
    df = frame(tmp_path, [rec("w1", 70.0, weights=w("aa"), **{"model.weights": "file"}),
                          rec("w2", 80.0, weights=w("bb"), **{"model.weights": "file"})])
    assert list(table(df).columns) == ["ap {weights.path=/w/aa.pth, weights.sha256=aa}",
                                       "ap {weights.path=/w/bb.pth, weights.sha256=bb}"]


def test_non_identity_options_do_not_split(tmp_path):
    df = frame(tmp_path, [
        rec("a", 70.0),
        rec("b", 72.0, seed=1, **{"trainer.prefix_cache": "off", "trainer.prefix_cache_dir": "/shared",
                                  "trainer.progress": True, "trainer.measure_efficiency": False,
                                  "trainer.throughput_warmup": 1, "trainer.throughput_iters": 2,
                                  "dataset.cache": True, "dataset.cache_dir": "/tmp/c",
                                  "paths.results_dir": "/b/runs", "logger.name": "wandb", "force": True}),
    ])
    assert df["cell"].nunique() == 1
    assert table(df).loc["fmnist1k"].tolist() == ["71.00 ± 1.41"]


def test_options_that_can_change_numbers_do_split(tmp_path):
    df = frame(tmp_path, [rec("a", 70.0), rec("b", 72.0, seed=1, **{"trainer.eval_batch_size": 64})])
    assert list(table(df).columns) == ["ap {eval_batch_size=64}", "ap {eval_batch_size=128}"]


GRID = {"lr": [0.001, 0.01], "weight_decay": [0.0]}


def selection(chosen_lr, grid=GRID, space=False, select_seed=0):
    out = {"select_seed": select_seed, "chosen": {"lr": chosen_lr, "weight_decay": 0.0},
           "val_top1": [{"lr": v, "weight_decay": 0.0, "val_top1": 50.0, "run_id": f"sel{v}"} for v in grid["lr"]]}
    if space:  # i14's records: space/budget/rule/points instead of grid
        out |= {"space": grid, "budget": 2, "rule": "grid",
                "points": [{"lr": v, "weight_decay": 0.0} for v in grid["lr"]]}
    else:
        out["grid"] = grid
    return out


@pytest.mark.parametrize("space", [False, True])
def test_final_runs_of_one_search_are_one_cell_whatever_they_chose(tmp_path, space):
    # Seeds 0 and 1 of one protocol cell; the search chose different lrs (e.g. rerun after a grid tie).
    v = {"protocol": {"name": "vtab1k", "stage": "final"}}
    df = frame(tmp_path, [
        rec("f0", 70.0, seed=0, selected_from=selection(0.001, space=space), **v, **{"trainer.lr": 0.001}),
        rec("f1", 74.0, seed=1, selected_from=selection(0.01, space=space), **v, **{"trainer.lr": 0.01}),
    ])
    assert df["cell"].nunique() == 1
    assert table(df, "vtab1k").loc["fmnist1k"].tolist() == ["72.00 ± 2.83"]
    assert method_tables(df)[("efficientnet_lite0", "vtab1k", "fmnist1k")].loc["ap", "lr"] == "0.001/0.01"


def test_another_search_space_is_another_cell_and_a_shared_final_run_is_in_both(tmp_path):
    v = {"protocol": {"name": "vtab1k", "stage": "final"}, "trainer.lr": 0.01}
    narrow, wide = {"lr": [0.001, 0.01], "weight_decay": [0.0]}, {"lr": [0.01, 0.1], "weight_decay": [0.0]}
    df = frame(tmp_path, [
        rec("n", 70.0, selected_from=selection(0.01, narrow), **v),
        rec("w", 80.0, seed=1, selected_from=selection(0.01, wide), **v),
        # a final run both searches chose (i14: a list of the selections that reached it)
        rec("both", 76.0, seed=2, selected_from=[selection(0.01, narrow), selection(0.01, wide)], **v),
    ])
    t = table(df, "vtab1k")
    assert df["cell"].nunique() == 2
    shared = "\N{DOUBLE DAGGER}"  # some runs of the cell are also in another cell
    assert t.loc["fmnist1k"].to_dict() == {
        "ap {selected_from.grid.lr=[0.001,0.01]}": "73.00 ± 4.24" + shared,  # 70, 76
        "ap {selected_from.grid.lr=[0.01,0.1]}": "78.00 ± 2.83" + shared,    # 80, 76
    }
