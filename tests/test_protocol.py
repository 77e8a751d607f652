"""Protocols: selection on val, final runs on test; the test split is never opened before the final runs."""
import pytest

from apbench import protocol
from apbench.data.base import Splits
from apbench.validate import ConfigError
from conftest import compose

SMALL_GRID = ["protocol=vtab1k", "method.space.head_lr=[0.01,0.001]", "method.space.weight_decay=[0.0]",
              "protocol.seeds=[0,1]", "trainer.measure_efficiency=false"]
NO_RULE = ["protocol.reserve=0", "protocol.retest=0"]  # the drawn points alone (the edge rule: test_edge_rule.py)


def test_grid_order_choice_and_edges():
    grid = {"lr": [1e-3, 1e-2, 1e-1], "weight_decay": [0.0, 1e-4]}
    points = protocol.grid_points(grid)
    assert len(points) == 6 and points[:2] == [{"lr": 1e-3, "weight_decay": 0.0}, {"lr": 1e-3, "weight_decay": 1e-4}]
    assert protocol.choose([50.0, 70.0, None, 70.0]) == 1          # full ties -> first drawn
    assert protocol.choose([None, None]) is None                    # failed points never win
    assert protocol.edge_flags(grid, {"lr": 1e-1, "weight_decay": 0.0}) == ["lr=high"]   # wd=0 is no edge
    assert protocol.edge_flags(grid, {"lr": 1e-3, "weight_decay": 1e-4}) == ["lr=low", "weight_decay=high"]
    assert protocol.edge_flags(grid, {"lr": 1e-2, "weight_decay": 0.0}) == []
    assert protocol.edge_flags({"lr": [1e-2]}, {"lr": 1e-2}) == []   # a single value is no choice


def test_runs_per_job_and_auto(tmp_path):
    base = [f"paths.root_dir={tmp_path}", "dataset=fmnist_tiny"]
    assert protocol.runs_of(compose(*base)) == 1                                   # fixed
    # budget 8 + reserve 4 + retest 2 points x 2 seeds, 5 final seeds
    assert protocol.runs_of(compose(*base, "protocol=vtab1k")) == 8 + 4 + 2 * 2 + 5
    assert protocol.runs_of(compose(*base, "protocol=vtab1k", "protocol.seeds=3")) == 8 + 4 + 4 + 3
    assert protocol.runs_of(compose(*base, "protocol=vtab1k", *NO_RULE)) == 8 + 5
    # A space smaller than the budget runs whole: 2 x 1 points (then the same reserve and retest).
    assert protocol.runs_of(compose(*base, "protocol=vtab1k", "method=linear_probe", "method.space.head_lr=[0.1,1.0]",
                                    "method.space.weight_decay=[0.0]")) == 2 + 4 + 4 + 5
    auto = protocol.resolve(compose(*base, "protocol=auto"))                       # fmnist follows vtab1k
    assert auto["name"] == "vtab1k" and auto["final_trainval"] is True
    assert protocol.resolve(compose(*base, "protocol=auto", "dataset.protocol=fgvc"))["final_trainval"] is False
    assert protocol.resolve(compose(*base, "protocol=auto", "dataset.protocol=fixed"))["space"] is None
    assert protocol.resolve(compose(*base, "protocol=fgvc"))["final_trainval"] is False
    nested = protocol.resolve(compose(*base, "protocol=vtab1k", "+method.space.method.shape=[full,channel]"))
    assert nested["space"]["method.shape"] == ["full", "channel"] and protocol.space_size(nested["space"]) == 80
    dropped = protocol.resolve(compose(*base, "protocol=vtab1k", "method.space.method.layers=null"))
    assert "method.layers" not in dropped["space"] and protocol.space_size(dropped["space"]) == 4 * 2


def test_stage_configs_differ_only_in_what_was_computed(tmp_path):
    from apbench.run import run_id_of
    cfg = compose(f"paths.root_dir={tmp_path}", "protocol=vtab1k")
    wider = compose(f"paths.root_dir={tmp_path}", "protocol=vtab1k", "method.space.lr=[1e-4,3e-4,1e-3]",
                    "protocol.seeds=10")
    point = {"lr": 3e-4, "weight_decay": 0.0}
    a = protocol.stage_config(cfg, "vtab1k", "select", point, 0, trainval=False)
    # Widening the space or adding seeds keeps every run already done (the run id is taken after the
    # recipe is resolved, which drops the space).
    from apbench.recipes import resolve
    assert run_id_of(resolve(a)) == run_id_of(resolve(protocol.stage_config(wider, "vtab1k", "select", point, 0,
                                                                           trainval=False)))
    f = protocol.stage_config(cfg, "vtab1k", "final", point, 0, trainval=True)
    assert run_id_of(a) != run_id_of(f) and f.dataset.trainval is True and f.trainer.lr == 3e-4
    with pytest.raises(ConfigError, match="trainer.nonsense"):
        protocol.stage_config(cfg, "vtab1k", "select", {"nonsense": 1}, 0, trainval=False)


def test_a_single_run_of_a_grid_protocol_is_refused(tmp_path):
    from apbench.run import run
    with pytest.raises(ConfigError, match="protocol.stage=None"):
        run(compose(f"paths.root_dir={tmp_path}", "protocol=vtab1k", "model=tiny_resnet", "device=cpu"))


def test_test_split_is_opened_only_by_final_runs(tiny_overrides, monkeypatch, capsys):
    """Real training on tiny data through every phase: 2 drawn points, 1 reserve run (a 2-point space's
    best is always on an edge, so it is an edge extension), 2 retest runs, 2 final runs."""
    from apbench.run import run as real_run

    events = []
    real_test = Splits.test

    def spy_test(self):
        events.append("test")
        return real_test(self)

    def spy_run(cfg, **kw):
        events.append(("start", cfg.protocol.stage))
        rec = real_run(cfg, **kw)
        events.append(("end", cfg.protocol.stage))
        return rec

    monkeypatch.setattr(Splits, "test", spy_test)
    rule = ["protocol.reserve=1", "protocol.retest=2", "protocol.retest_seeds=1"]
    cfg = compose(*tiny_overrides, "method=linear_probe", *SMALL_GRID, *rule)
    recs = protocol.run_protocol(cfg, run=spy_run)

    assert [r["stage"] for r in recs] == ["select"] * 5 + ["final"] * 2
    assert all(r["status"] == "ok" for r in recs), [r["error"] for r in recs]
    # Split the event log into runs: select runs never touch test, each final run exactly once.
    runs, current = [], None
    for e in events:
        if isinstance(e, tuple) and e[0] == "start":
            current = (e[1], [])
        elif isinstance(e, tuple) and e[0] == "end":
            runs.append(current)
        else:
            assert current is not None, "test split opened outside any run"
            current[1].append(e)
    assert [(stage, len(tests)) for stage, tests in runs] == [("select", 0)] * 5 + [("final", 1), ("final", 1)]

    select, final = recs[:5], recs[5:]
    assert all(r["metrics"]["test_top1"] is None and r["config"]["dataset"]["trainval"] is False for r in select)
    assert [r["hparams"]["search"]["phase"] for r in select] == ["select", "select", "extension", "retest", "retest"]
    assert [r["seed"] for r in select] == [0, 0, 0, 1, 1]
    # Expected choice, computed here without apbench.selection: the drawn point with the higher val
    # (then the lower val loss) sits on an edge of the 2-point space; the extension goes one step past it.
    val = {(r["hparams"]["head_lr"], r["seed"]): (r["metrics"]["val_top1"], r["metrics"]["val_loss"]) for r in select}
    first = sorted([0.01, 0.001], key=lambda lr: (-val[(lr, 0)][0], val[(lr, 0)][1]))[0]
    assert select[2]["hparams"]["head_lr"] == pytest.approx(0.1 if first == 0.01 else 0.0001)
    # The two best single runs (of three) are retested with seed 1; the best mean (then mean loss) wins.
    tried = [0.01, 0.001, select[2]["hparams"]["head_lr"]]  # in the order tried: the last tie-break
    top2 = sorted(tried, key=lambda lr: (-val[(lr, 0)][0], val[(lr, 0)][1], tried.index(lr)))[:2]
    assert {r["hparams"]["head_lr"] for r in select[3:]} == set(top2)
    mean = {lr: ((val[(lr, 0)][0] + val[(lr, 1)][0]) / 2, (val[(lr, 0)][1] + val[(lr, 1)][1]) / 2) for lr in top2}
    chosen = sorted(top2, key=lambda lr: (-mean[lr][0], mean[lr][1], top2.index(lr)))[0]
    for r, seed in zip(final, (0, 1)):
        assert r["seed"] == seed and r["protocol"] == "vtab1k" and r["config"]["dataset"]["trainval"] is True
        assert r["metrics"]["test_top1"] is not None and r["hparams"]["head_lr"] == chosen
        sel = r["hparams"]["selected_from"]
        assert sel["space"] == {"head_lr": [0.01, 0.001], "weight_decay": [0.0]}
        assert sel["budget"] == 8 and sel["rule"] == "grid" and sel["points"] == [
            {"head_lr": 0.01, "weight_decay": 0.0}, {"head_lr": 0.001, "weight_decay": 0.0}]
        assert sel["reserve"] == 1 and sel["retest"] == {"points": 2, "seeds": 1}
        assert [v["val_top1"] for v in sel["val_top1"]] == [x["metrics"]["val_top1"] for x in select]
        assert [v["val_loss"] for v in sel["val_loss"]] == [x["metrics"]["val_loss"] for x in select]
        assert [v["phase"] for v in sel["val_top1"]] == ["select", "select", "extension", "retest", "retest"]
        assert [v["run_id"] for v in sel["val_top1"]] == [x["run_id"] for x in select] and sel["chosen"]["head_lr"] == chosen
        assert sel["chosen_score"]["val_top1"] == pytest.approx(mean[chosen][0]) and sel["chosen_score"]["n"] == 2
        assert sel["compute"]["runs"] == 5 and sel["compute"]["train_steps"] == sum(
            x["optimizer"]["total_steps"] for x in select)

    # Relaunching the job (e.g. a requeued SLURM job) reruns nothing; only a final run's skip check lists
    # its test split (the identity's data digest: names, sizes, mtimes; no image is decoded).
    events.clear()
    again = protocol.run_protocol(compose(*tiny_overrides, "method=linear_probe", *SMALL_GRID, *rule), run=spy_run)
    assert events == [("start", "select"), ("end", "select")] * 5 + [("start", "final"), "test", ("end", "final")] * 2
    assert [r["run_id"] for r in again] == [r["run_id"] for r in recs]
    assert capsys.readouterr().out.count("skipped") >= 7


def test_a_busy_select_run_stops_the_choice_instead_of_shrinking_the_budget(tmp_path, capsys):
    """A select run another process is training (its lease is live) comes back 'skipped': choosing from
    the other points would give this method fewer select runs than every other one. No final run."""
    cfg = compose(f"paths.root_dir={tmp_path}", "dataset=fmnist_tiny", "method=linear_probe", *SMALL_GRID)
    calls = []

    def fake_run(c, hparams=None):  # the second point stays busy: the other process is still training it
        calls.append(c.protocol.stage)
        if c.trainer.head_lr == 0.001:
            return {"status": "skipped", "skipped_because": "being trained by host:1", "run_id": "x"}
        return {"status": "ok", "run_id": f"r{len(calls)}", "metrics": {"val_top1": 50.0 + len(calls), "val_loss": 1.0}}
    records = protocol.run_protocol(cfg, run=fake_run)
    assert calls == ["select", "select", "select"] and len(records) == 2  # looked at once more, still busy
    assert records[1]["skipped_because"]
    assert "the choice and the final runs are left to the job that finishes them" in capsys.readouterr().out


def test_a_select_run_another_process_finished_meanwhile_is_used_and_the_cell_completes(tmp_path, capsys):
    """Two lanes that alternate through a cell: the run the other lane held when this one reached it
    has a finished record by the end of this lane's pass. The lane looks again, uses that record (its
    score takes part in the choice) and runs the final runs, instead of leaving the cell to nobody."""
    cfg = compose(f"paths.root_dir={tmp_path}", "dataset=fmnist_tiny", "method=linear_probe", *SMALL_GRID, *NO_RULE)
    calls = []

    def fake_run(c, hparams=None):
        calls.append((c.protocol.stage, c.trainer.head_lr))
        if calls == [("select", 0.01)]:  # the first point is held by the other lane when reached ...
            return {"status": "skipped", "skipped_because": "being trained by host:1", "run_id": "a"}
        val = {0.01: 70.0, 0.001: 60.0}[c.trainer.head_lr]  # ... and, done by now, it scores best
        return {"status": "ok", "run_id": f"r{len(calls)}", "metrics": {"val_top1": val, "val_loss": 1.0}}
    records = protocol.run_protocol(cfg, run=fake_run)
    assert calls == [("select", 0.01), ("select", 0.001), ("select", 0.01), ("final", 0.01), ("final", 0.01)]
    assert [r["status"] for r in records] == ["ok"] * 4
    assert "left to the job" not in capsys.readouterr().out


def test_a_cell_says_which_of_its_runs_is_starting(tmp_path, capsys):
    rule = ["protocol.reserve=1", "protocol.retest=2", "protocol.retest_seeds=1"]
    cfg = compose(f"paths.root_dir={tmp_path}", "dataset=fmnist_tiny", "method=linear_probe", *SMALL_GRID, *rule)
    protocol.run_protocol(cfg, run=lambda c, hparams=None: {"status": "ok", "run_id": "r",
                                                            "metrics": {"val_top1": 50.0, "val_loss": 1.0}})
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "cell run" in ln]
    # 2 grid points + 1 reserve + 2 x 1 retest + 2 seeds: 7 runs in the cell. Every score ties, so the
    # first drawn point is best: head_lr 0.01, the high edge of [0.01, 0.001], extended to 0.1.
    assert lines == [
        "[apbench] protocol vtab1k: select run 1 of 2 (cell run 1 of 7): {'head_lr': 0.01, 'weight_decay': 0.0}",
        "[apbench] protocol vtab1k: select run 2 of 2 (cell run 2 of 7): {'head_lr': 0.001, 'weight_decay': 0.0}",
        "[apbench] protocol vtab1k: reserve run 1 of 1, edge rule: head_lr past its high edge -> 0.1 (cell run 3 of 7): "
        "{'head_lr': 0.1, 'weight_decay': 0.0}",
        "[apbench] protocol vtab1k: retest run 1 of 2 (cell run 4 of 7): {'head_lr': 0.01, 'weight_decay': 0.0}, seed 1",
        "[apbench] protocol vtab1k: retest run 2 of 2 (cell run 5 of 7): {'head_lr': 0.001, 'weight_decay': 0.0}, seed 1",
        "[apbench] protocol vtab1k: final run 1 of 2 (cell run 6 of 7): seed 0",
        "[apbench] protocol vtab1k: final run 2 of 2 (cell run 7 of 7): seed 1"]


def test_a_final_run_two_searches_reach_names_both(tmp_path):
    """Two searches (here: two spaces) that choose the same point reach the same final run (same config,
    same run id); the second finds it done, and the record then carries both selections (a list), so the
    tables count it in both cells."""
    import json

    from apbench.results.cells import selections
    from apbench.run import run_dir_of, run_id_of
    from apbench.results.store import write_record

    store = {}

    def fake_run(c, hparams=None):
        rid = run_id_of(c)
        if rid not in store:
            rec = {"status": "ok", "run_id": rid, "stage": c.protocol.stage, "hparams": dict(hparams or {}),
                   "metrics": {"val_top1": 60.0 if c.trainer.head_lr == 0.01 else 40.0, "val_loss": 1.0}}
            write_record(run_dir_of(c, rid) / "record.json", rec)
            store[rid] = rec
        return json.loads((run_dir_of(c, rid) / "record.json").read_text())

    base = [f"paths.root_dir={tmp_path}", "dataset=fmnist_tiny", "method=linear_probe", "protocol=vtab1k", "method.space.weight_decay=[0.0]",
            "protocol.seeds=[0]", "trainer.measure_efficiency=false"]
    first = protocol.run_protocol(compose(*base, "method.space.head_lr=[0.01,0.001]"), run=fake_run)
    second = protocol.run_protocol(compose(*base, "method.space.head_lr=[0.01,0.0001]"), run=fake_run)
    assert first[-1]["run_id"] == second[-1]["run_id"]                    # the same final run
    on_disk = json.loads((tmp_path / "runs" / first[-1]["run_id"] / "record.json").read_text())
    spaces = [s["space"]["head_lr"] for s in selections(on_disk)]
    assert spaces == [[0.01, 0.001], [0.01, 0.0001]]
    # launched again, nothing is appended twice
    protocol.run_protocol(compose(*base, "method.space.head_lr=[0.01,0.0001]"), run=fake_run)
    assert len(selections(json.loads((tmp_path / "runs" / first[-1]["run_id"] / "record.json").read_text()))) == 2
