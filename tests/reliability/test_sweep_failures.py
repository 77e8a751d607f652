"""One `-m` sweep with a run that raises, one whose loss turns NaN, one that runs out of memory and one
with a missing data folder: the others finish, every failure during a run leaves a record saying what
happened (the bad input, refused before training, leaves none, and makes the sweep exit 2 at its
end), and the report lists them.

All three are real triggers, no test hooks:
  raise -- dataset.test_size larger than the test set: found only when the test split is opened,
           after training (by design: selection runs never open it);
  nan   -- trainer.lr=1e30;
  oom   -- trainer.batch_size=10**12: training sees only the 40 images there are, but the efficiency
           measures allocate a synthetic batch of that size, 12 PB, which the allocator refuses at
           once on every machine (past any address space: it never swaps or wakes the OOM killer).
"""
from __future__ import annotations

from apbench.results.store import iter_records

from .conftest import apbench, tiny

CASES = {  # a Hydra config group of whole-run variations, one sweep value each (`nan` would parse as a float)
    "ok_a": "seed: 0\ntrainer: {measure_efficiency: false}\n",
    "ok_b": "seed: 1\ntrainer: {measure_efficiency: false}\n",
    # Raises once training starts (the optimizer refuses a parameter group the method does not have).
    "raises": "method: {lr_scale: {bogus: 2.0}}\ntrainer: {measure_efficiency: false}\n",
    "nan_loss": "trainer: {lr: 1.0e30, head_lr: 1.0e30, measure_efficiency: false}\n",
    "out_of_memory": "trainer: {batch_size: 1000000000000, measure_efficiency: true}\n",
    # Bad input found before training: refused with no record, and the sweep goes on.
    "missing_data": "dataset: {root: /nonexistent/fashion-mnist}\n",
}
RECORDED = len(CASES) - 1


def test_failures_inside_a_sweep_are_recorded_and_the_rest_completes(tmp_path, tally):
    conf = tmp_path / "conf" / "case"
    conf.mkdir(parents=True)
    for name, body in CASES.items():
        (conf / f"{name}.yaml").write_text("# @package _global_\n" + body)
    out = apbench(*tiny(tmp_path, f"+case={','.join(CASES)}", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                        multirun=True), cwd=tmp_path, timeout=300)
    # every other cell ran; the refused one makes the sweep end with exit 2, named in the summary
    assert out.returncode == 2, out.stderr[-3000:]
    assert "1 cell(s) of the sweep were refused" in out.stderr
    assert "+case=missing_data: bad input" in out.stderr.split("were refused")[1]

    recs = list(iter_records(tmp_path / "runs"))
    tally.lost_or_corrupt += RECORDED - len(recs)
    assert len(recs) == RECORDED, [r["status"] for r in recs]
    assert "bad input: dataset.root=/nonexistent/fashion-mnist is not a directory" in out.stderr
    ok = [r for r in recs if r["status"] == "ok"]
    assert len(ok) == 2 and all(r["metrics"]["test_top1"] is not None for r in ok)

    [nan] = [r for r in recs if r["hparams"]["lr"] == 1e30]
    assert nan["status"] == "failed" and nan["error"]["type"] == "NonFiniteLoss"
    assert "lower trainer.lr" in nan["error"]["message"]
    [oom] = [r for r in recs if r["hparams"]["batch_size"] == 10**12]
    assert oom["status"] == "oom", oom["error"]
    assert "can't allocate memory" in oom["error"]["message"] and oom["metrics"]["test_top1"] is not None
    [boom] = [r for r in recs if "bogus" in r["hparams"]["lr_scale"]]  # merged into the declared groups
    assert boom["status"] == "failed" and boom["error"]["type"] == "ValueError"
    assert "lr_scale names group(s) ['bogus'] the method does not have" in boom["error"]["message"]
    for r in (nan, oom, boom):
        assert r["error"]["traceback"] and r["finished_at"]

    report = apbench("results", str(tmp_path / "runs"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "failures (3)" in report.stdout
    for r in (nan, oom, boom):
        assert r["run_id"] in report.stdout and r["status"] in report.stdout


def test_a_failed_duplicate_never_overwrites_an_ok_record(tiny_overrides, monkeypatch, tally):
    """Two launches of one cell (a sweep started twice): the later one fails, the ok result stays."""
    import apbench.cell
    from apbench.results.store import read_record, write_record
    from apbench.run import run, run_dir_of, run_id_of
    from conftest import compose

    cfg = compose(*tiny_overrides, "force=true")
    path = run_dir_of(cfg, run_id_of(cfg)) / "record.json"
    write_record(path, {"run_id": run_id_of(cfg), "status": "ok", "metrics": {"test_top1": 42.0}})

    def dies(*a, **k):
        raise RuntimeError("node lost")
    monkeypatch.setattr(apbench.cell, "execute", dies)
    assert run(cfg)["metrics"] == {"test_top1": 42.0}
    kept = read_record(path)
    tally.lost_or_corrupt += kept["status"] != "ok"
    assert kept["status"] == "ok" and kept["metrics"] == {"test_top1": 42.0}
    path.unlink()
    assert run(cfg)["status"] == "failed" and read_record(path)["error"]["message"] == "node lost"
