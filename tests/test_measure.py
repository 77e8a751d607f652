"""`apbench measure`: every distinct cell of a sweep measured in one pass, labelled like the results
tables, with ratios against a baseline cell of the same pass, and never losing what it measured."""
import pytest

from apbench import back_to_back, sweep
from apbench.commands import measure
from conftest import CONF

BASE = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu"]


def jobs(*methods):
    return sweep.sweep_jobs(BASE + [f"method={','.join(methods)}"], str(CONF))


@pytest.fixture(scope="module")
def measured():
    js = (sweep.sweep_jobs(BASE + ["method=ap", "method.layers=1,3"], str(CONF)) + jobs("linear_probe", "full_ft")
          + sweep.sweep_jobs(BASE + ["method=ap", "method.layers=3", "trainer.lr=0.5"], str(CONF)))  # same cell
    return back_to_back.measure_cells(js, warmup=1, iters=1, repeat=2, progress=lambda s: None)


def test_one_row_per_distinct_cell_with_the_records_parameter_counts(measured):
    assert len(measured) == 4  # the lr does not make another cell
    t = back_to_back.table(measured, "full_ft")
    assert list(t.index) == ["ap@1", "ap@3", "full_ft", "linear_probe"]
    # Closed form for tiny_resnet (resnet18, one BasicBlock per stage) at 32 px, 10 classes:
    head = 512 * 10 + 10
    stem = 3 * 64 * 7 * 7 + 2 * 64                                      # conv1 + bn1
    def stage(c_in, c_out):                                              # conv-bn, conv-bn (+ 1x1 downsample-bn)
        down = c_in * c_out + 2 * c_out if c_in != c_out else 0
        return c_in * c_out * 9 + 2 * c_out + c_out * c_out * 9 + 2 * c_out + down
    backbone = stem + stage(64, 64) + stage(64, 128) + stage(128, 256) + stage(256, 512)
    # AP's full-shape prompt: point 1 is 64 x 8 x 8 (stem /2, maxpool /2), point 3 is 256 x 2 x 2
    expected = {"ap@1": 64 * 8 * 8 + head, "ap@3": 256 * 2 * 2 + head, "full_ft": backbone + head,
                "linear_probe": head}
    assert t["trainable params"].to_dict() == expected
    assert t["trainable w/o head"].to_dict() == {k: v - head for k, v in expected.items()}
    cfg = jobs("linear_probe")[0].cfg
    # the batch, the iterations and the spread of the repeated timings are in the table
    assert (t["batch"] == cfg.trainer.batch_size).all()
    assert set(t["timings"]) == {"2 x (1 warm-up + 1 timed)"}
    lo, hi = (float(v) for v in t.loc["full_ft", "spread (ms)"].split("-"))
    assert lo <= t.loc["full_ft", "train step, full model (ms)"] <= hi


def test_ratios_are_against_the_baseline_of_the_same_pass(measured):
    t = back_to_back.table(measured, "full_ft")
    assert t.loc["full_ft", "memory x (full_ft)"] == 1.0 and t.loc["full_ft", "step x (full_ft)"] == 1.0
    # saved-for-backward bytes are structural: the deeper prompt keeps less, the probe least
    assert t.loc["ap@3", "memory (MB)"] < t.loc["ap@1", "memory (MB)"] < t.loc["full_ft", "memory (MB)"]
    assert t.loc["ap@3", "prefix cache from"] == "3" and t.loc["full_ft", "prefix cache from"] == "-"
    assert not any(c.startswith(("memory x", "step x")) for c in back_to_back.table(measured, None).columns)


def test_default_baseline_linear_probe_else_first_else_none():
    assert back_to_back.choose_baseline(["full_ft", "ap@3", "linear_probe"], None) == "linear_probe"
    assert back_to_back.choose_baseline(["full_ft", "ap@3"], None) == "ap@3"  # first in table order
    assert back_to_back.choose_baseline([], None) is None
    assert back_to_back.choose_baseline(["full_ft"], "") is None and back_to_back.choose_baseline(["x"], "vp") == "vp"


def test_unknown_baseline_is_refused_before_measuring(monkeypatch, capsys):
    def never(*a, **k):
        raise AssertionError("measured although the baseline is missing")
    monkeypatch.setattr(back_to_back, "measure_cells", never)
    assert measure.main(BASE + ["method=ap,full_ft", "--baseline", "vp"]) == 2
    assert "--baseline 'vp' is not among the cells: ap, full_ft" in capsys.readouterr().err


def test_written_after_every_cell_and_a_failed_cell_loses_nothing(monkeypatch, tmp_path, capsys):
    real_build, seen = back_to_back.build_cell, []

    def build(cfg, device):
        seen.append(int(cfg.trainer.eval_batch_size))
        if cfg.method.name == "full_ft":
            raise RuntimeError("out of memory (simulated)")
        return real_build(cfg, device)
    monkeypatch.setattr(back_to_back, "build_cell", build)
    out = tmp_path / "out"
    rc = measure.main(BASE + ["method=linear_probe,full_ft", "--iters", "1", "--warmup", "0", "--repeat", "1",
                              "--out", str(out)])
    assert rc == 1  # a cell failed: said by the exit status, the others' figures kept
    text = (out / "efficiency-measured-tiny_resnet.md").read_text()
    assert "| linear_probe " in text and "RuntimeError: out of memory (simulated)" in text
    assert "memory x (linear_probe)" in text  # the default baseline
    stdout = capsys.readouterr().out
    assert "every timing at the training batch (8, as the records)" in stdout
    assert seen == [8, 8]  # inference timed at trainer.batch_size, not trainer.eval_batch_size (32)


def test_cells_from_records_and_the_cli(tiny_overrides, tmp_path, capsys):
    from apbench.cli import main
    from apbench.run import run
    from conftest import compose

    for method in ("linear_probe", "full_ft"):
        assert run(compose(*tiny_overrides, f"method={method}", "trainer.measure_efficiency=false"))["status"] == "ok"
    js = back_to_back.jobs_from_records(tmp_path / "runs")
    assert sorted(j.cfg.method.name for j in js) == ["full_ft", "linear_probe"]
    assert main(["measure", "--records", str(tmp_path / "runs"), "--iters", "1", "--repeat", "1",
                 "--baseline", "full_ft", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| linear_probe " in out and "memory x (full_ft)" in out
    assert (tmp_path / "out" / "efficiency-measured-tiny_resnet.md").is_file()
    assert main(["measure", "--records", str(tmp_path / "nothing")]) == 2
