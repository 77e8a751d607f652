"""`apbench measure`: every distinct cell of a sweep measured in one pass, labelled like the results
tables, with ratios against a baseline cell of the same pass."""
import pytest

from apbench import measure, plan
from apbench.engine.params import count_params
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
    cfg = plan.sweep_jobs(BASE + ["method=linear_probe"], str(CONF))[0].cfg
    model, adapted, head, _ = plan.build_cell(cfg, "cpu")
    assert t.loc["linear_probe", "trainable params"] == count_params(model, head.prefixes, adapted.inserted)["trainable"]


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
