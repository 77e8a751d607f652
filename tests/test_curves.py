"""Learning curves and the convergence check (issue 14), from records."""
import json

from apbench.results import curves
from conftest import compose


def _hist(vals, losses=None):
    return [{"epoch": i + 1, "val_top1": v, "train_loss": (losses or [1.0] * len(vals))[i]} for i, v in enumerate(vals)]


def test_convergence_over_the_last_fifth_of_the_epochs():
    # 10 epochs: the tail is the last 2; max 80, tail min 79.0 -> within 1 point.
    assert curves.convergence(_hist([10, 50, 70, 80, 78, 79, 79, 79, 79.5, 79.0]))["converged"] is True
    # Still climbing: the max (80) is the last epoch, the tail min 75 is 5 points below it -> not converged.
    r = curves.convergence(_hist([10, 20, 30, 40, 50, 60, 65, 70, 75, 80]))
    assert r == {"converged": False, "max_val": 80, "tail_min": 75, "tail_epochs": 2, "epochs": 10}
    # A peak early and a drop of more than a point at the end: not converged (final epoch is reported).
    assert curves.convergence(_hist([80, 79, 78, 77, 76]))["converged"] is False     # tail = last 2 epochs
    # Three epochs: the tail is two (one score cannot "stay"), so a curve still rising at the end fails.
    assert curves.convergence(_hist([70, 80, 82])) == {"converged": False, "max_val": 82, "tail_min": 80,
                                                       "tail_epochs": 2, "epochs": 3}
    assert curves.convergence(_hist([70, 81.5, 82]))["converged"] is True
    # One epoch of val cannot tell.
    assert curves.convergence(_hist([82]))["converged"] is None
    assert curves.convergence(_hist([80, 79.5, 79.2, 79.1, 79.0]))["converged"] is True
    assert curves.convergence([{"epoch": 1, "train_loss": 1.0}])["converged"] is None  # a final run: no val


def test_cells_group_final_runs_by_their_selection(tmp_path):
    sel = {"run_id": "s1", "stage": "select", "status": "ok", "dataset": "d", "model": "m", "method": "ap",
           "layers": ["8"], "config": {"method": {"head": "linear"}}, "history": _hist([50, 60, 61, 61, 61])}
    other = dict(sel, run_id="s0", history=_hist([10, 20, 30, 40, 50]))
    selected = {"chosen_index": 1, "chosen": {"lr": 0.1},
                "val_top1": [{"run_id": "s0", "val_top1": 50}, {"run_id": "s1", "val_top1": 61}]}
    finals = [{"run_id": f"f{s}", "stage": "final", "status": "ok", "seed": s, "hparams": {"selected_from": selected},
               "history": [{"epoch": e, "train_loss": 1.0 / e} for e in range(1, 6)]} for s in (2, 0, 1)]
    for r in [sel, other, *finals]:
        (tmp_path / "runs" / r["run_id"]).mkdir(parents=True)
        (tmp_path / "runs" / r["run_id"] / "record.json").write_text(json.dumps(r))
    rows = curves.write(tmp_path / "runs", tmp_path / "out")
    assert rows == [{"cell": "d m ap layers=8", "select_run": "s1", "converged": True, "max_val": 61, "tail_min": 61,
                     "tail_epochs": 2, "epochs": 5, "final_runs": 3}]
    [cell] = curves.cells_of(curves.load_records(tmp_path / "runs"))
    assert [r["seed"] for r in cell.finals] == [0, 1, 2]
    assert (tmp_path / "out" / "curve-d_m_ap_layers=8.png").stat().st_size > 0
    assert "| d m ap layers=8 | yes | 61.00 | 61.00 | 5 |" in (tmp_path / "out" / "convergence.md").read_text()


def test_curves_from_a_real_protocol_run(tiny_overrides, tmp_path):
    from apbench.protocol import run_protocol
    cfg = compose(*tiny_overrides, "method=linear_probe", "protocol=vtab1k", "method.space.head_lr=[0.01,0.001]",
                  "method.space.weight_decay=[0.0]", "protocol.seeds=[0]", "trainer.epochs=3",
                  "trainer.measure_efficiency=false")
    recs = run_protocol(cfg)
    select = [r for r in recs if r["stage"] == "select"]
    assert all(len(r["history"]) == 3 and all("val_top1" in h and "val_loss" in h for h in r["history"]) for r in select)
    assert all(r["history"][-1]["val_top1"] == r["metrics"]["val_top1"] for r in select)   # the final epoch's
    rows = curves.write(cfg.paths.results_dir, tmp_path / "curves")
    assert len(rows) == 1 and rows[0]["epochs"] == 3 and rows[0]["final_runs"] == 1 and rows[0]["converged"] is not None
