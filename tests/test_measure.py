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
