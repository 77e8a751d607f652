"""`apbench measure`: every distinct cell of a sweep measured in one pass, labelled like the results
tables, with ratios against a baseline cell of the same pass."""
import pytest

from apbench import measure, plan
from conftest import CONF

BASE = ["model=tiny_resnet", "dataset=fmnist_tiny", "trainer=fast", "device=cpu"]


@pytest.fixture(scope="module")
def measured():
    jobs = (plan.sweep_jobs(BASE + ["method=ap", "method.layers=1,3"], str(CONF))
            + plan.sweep_jobs(BASE + ["method=linear_probe,full_ft"], str(CONF))
            + plan.sweep_jobs(BASE + ["method=ap", "method.layers=3", "trainer.lr=0.5"], str(CONF)))  # same cell
    return measure.measure_cells(jobs, warmup=1, iters=1, progress=lambda s: None)


def test_one_row_per_distinct_cell_with_the_records_parameter_counts(measured):
    assert len(measured) == 4  # the lr does not make another cell
    t = measure.table(measured, "full_ft")
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


def test_ratios_are_against_the_baseline_of_the_same_pass(measured):
    t = measure.table(measured, "full_ft")
    assert t.loc["full_ft", "memory x (full_ft)"] == 1.0 and t.loc["full_ft", "step x (full_ft)"] == 1.0
    # saved-for-backward bytes are structural: the deeper prompt keeps less, the probe least
    assert t.loc["ap@3", "memory (MB)"] < t.loc["ap@1", "memory (MB)"] < t.loc["full_ft", "memory (MB)"]
    assert t.loc["ap@3", "prefix cache from"] == "3" and t.loc["full_ft", "prefix cache from"] == "-"
    with pytest.raises(SystemExit, match="baseline 'vp' is not among the cells: ap@1, ap@3, full_ft, linear_probe"):
        measure.table(measured, "vp")


def test_cells_from_records_and_the_cli(tiny_overrides, tmp_path, capsys):
    from apbench.cli import main
    from apbench.run import run
    from conftest import compose

    for method in ("linear_probe", "full_ft"):
        assert run(compose(*tiny_overrides, f"method={method}", "trainer.measure_efficiency=false"))["status"] == "ok"
    jobs = measure.jobs_from_records(tmp_path / "runs")
    assert sorted(j.cfg.method.name for j in jobs) == ["full_ft", "linear_probe"]
    assert main(["measure", "--records", str(tmp_path / "runs"), "--iters", "1", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| linear_probe " in out and "memory x (full_ft)" in out
    assert (tmp_path / "out" / "efficiency-measured-tiny_resnet.md").is_file()
    assert main(["measure", "--records", str(tmp_path / "nothing")]) == 2
