"""Statistics with hand-worked numbers: McNemar from the binomial formula, the normal and Wilson
intervals written out, the Wilcoxon exact p of six wins, average ranks by hand."""
import math

import numpy as np
import pytest

from apbench.results.frame import records_frame
from apbench.results.predictions import encode
from apbench.results.stats import cd_diagram, cell_interval, cell_stats, paired_bootstrap, rank_table

Z = 1.959963984540054  # the 97.5 % normal quantile


def rec(run_id, method, acc, *, seed=0, dataset="d", n_test=None, pred=None, target=None):
    r = {"run_id": run_id, "status": "ok", "stage": "final", "protocol": "fixed", "model": "m",
         "dataset": dataset, "method": method, "head": "linear", "layers": [], "seed": seed,
         "metrics": {"test_top1": acc}, "hparams": {}, "finished_at": "2026-01-01T00:00:00Z"}
    if n_test is not None:
        r["data"] = {"test": n_test}
    if pred is not None:
        r["predictions"] = encode(pred, target)
        r["data"] = {"test": len(pred)}
    return r


def test_mcnemar_exact_from_a_hand_made_table():
    # 20 images, all of class 0: both right on 0-9, only A right on 10-11, only B right on 12-19.
    target = [0] * 20
    a = [0] * 12 + [1] * 8
    b = [0] * 10 + [1] * 2 + [0] * 8
    df = records_frame([rec("a", "A", 60.0, pred=a, target=target), rec("b", "B", 90.0, pred=b, target=target)])
    row = cell_stats(df, reference="B").set_index("label").loc["A"]
    # discordant 2 vs 8: p = 2 * P(X <= 2 | 10, 1/2) = 2 * (1 + 10 + 45) / 2^10
    assert row["vs_p"] == pytest.approx(2 * (1 + 10 + 45) / 1024, abs=1e-12)
    assert row["vs_test"] == "McNemar exact (1 run each)" and row["vs_diff"] == -30.0


def test_interval_without_predictions_adds_binomial_sampling_to_the_seed_spread():
    # 80 and 82 on 400 test images: std^2/n = 2/2, p(1-p)/N = 0.81*0.19/400 -> in %^2 x 1e4
    lo, hi, how = cell_interval([80.0, 82.0], 400)
    half = Z * math.sqrt(2.0 / 2 + 0.81 * 0.19 / 400 * 1e4)   # = 4.3153
    assert (lo, hi) == pytest.approx((81 - half, 81 + half), abs=1e-9)
    assert round(lo, 2) == 76.68 and round(hi, 2) == 85.32
    assert how == "normal: seed std + binomial test sampling (no predictions)"


def test_one_run_without_predictions_gets_the_wilson_interval():
    lo, hi, how = cell_interval([90.0], 100)
    p, n = 0.9, 100
    centre = (p + Z ** 2 / (2 * n)) / (1 + Z ** 2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z ** 2 / (4 * n ** 2)) / (1 + Z ** 2 / n)
    assert (lo, hi) == pytest.approx((100 * (centre - half), 100 * (centre + half)), abs=1e-6)
    assert round(lo, 2) == 82.56 and round(hi, 2) == 94.48
    assert how.startswith("binomial (Wilson)")


def test_bootstrap_interval_of_one_run_is_the_binomial_one():
    correct = np.zeros((1, 400), bool)
    correct[0, :300] = True  # 75 %: binomial half-width 1.96 * sqrt(.75 * .25 / 400) = 4.24 points
    lo, hi, how = cell_interval([75.0], 400, correct)
    assert lo == pytest.approx(75 - 4.24, abs=0.6) and hi == pytest.approx(75 + 4.24, abs=0.6)
    assert how == "bootstrap: test images"


def test_paired_bootstrap_sees_no_difference_in_identical_runs_and_a_clear_one():
    rng = np.random.default_rng(1)
    a = rng.random((3, 500)) < 0.8
    lo, hi, p = paired_bootstrap(a, a.copy())
    assert (lo, hi, p) == (0.0, 0.0, 1.0)
    b = a.copy()
    b[:, :60] = False  # B loses 60 images A may get right, on every seed
    lo, hi, p = paired_bootstrap(a, b)
    assert lo > 0 and p < 0.01


def wins(k):
    """Method A beats the reference R on k datasets by 1..k points."""
    return [r for i in range(k) for r in (rec(f"a{i}", "A", 70.0 + i + 1, dataset=f"d{i}"),
                                          rec(f"r{i}", "R", 70.0, dataset=f"d{i}"))]


def test_wilcoxon_six_wins_and_underpowered_below_six():
    t = rank_table(records_frame(wins(6)), "m", "fixed", reference="R")
    # all six differences positive and distinct: exact two-sided p = 2 / 2^6
    assert t.loc["A", "Wilcoxon p"] == f"{2 / 64:.2g}" and t.loc["A", "wins/ties/losses"] == "6/0/0"
    t5 = rank_table(records_frame(wins(5)), "m", "fixed", reference="R")
    assert t5.loc["A", "Wilcoxon p"] == "underpowered (5 datasets < 6)"
    assert t5.loc["R", "Wilcoxon p"] == "(reference)"


def test_average_ranks_by_hand():
    recs = [rec("a1", "A", 90.0, dataset="d1"), rec("b1", "B", 80.0, dataset="d1"), rec("c1", "C", 70.0, dataset="d1"),
            rec("a2", "A", 60.0, dataset="d2"), rec("b2", "B", 70.0, dataset="d2"), rec("c2", "C", 65.0, dataset="d2"),
            rec("x", "D", 50.0, dataset="d1")]  # D has no result on d2: left out of the ranks
    t = rank_table(records_frame(recs), "m", "fixed")
    assert t["average rank"].to_dict() == {"A": 2.0, "B": 1.5, "C": 2.5}  # (1+3)/2, (2+1)/2, (3+2)/2


def test_cd_diagram_or_why_not(tmp_path):
    recs = [rec(f"{m}{i}", m, 60.0 + i + j, dataset=f"d{i}") for i in range(4) for j, m in enumerate("ABC")]
    assert cd_diagram(records_frame(recs), "m", "fixed", tmp_path / "cd.png") is None
    assert (tmp_path / "cd.png").read_bytes()[:4] == b"\x89PNG"
    why = cd_diagram(records_frame(recs[:3]), "m", "fixed", tmp_path / "no.png")
    assert why.startswith("no critical-difference diagram: 1 dataset(s)") and not (tmp_path / "no.png").exists()


def test_cli_reference(tmp_path, capsys):
    from apbench.commands.results import main
    from apbench.results.store import write_record

    for r in wins(6):
        write_record(tmp_path / "runs" / r["run_id"] / "record.json", r)
    assert main([str(tmp_path / "runs"), "--reference", "nope"]) == 2
    assert "--reference 'nope' is not a method label of these records; choose one of: A, R" in capsys.readouterr().err
    assert main([str(tmp_path / "runs"), "--reference", "R", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "## against R: m, fixed" in out and "## across datasets against R: m, fixed" in out
    assert (tmp_path / "out" / "stats-m-fixed.md").is_file() and (tmp_path / "out" / "ranks-m-fixed.md").is_file()
    import pandas as pd
    ranks = pd.read_csv(tmp_path / "out" / "ranks-m-fixed.csv", index_col=0)
    assert ranks.loc["A", "average rank"] == 1.0 and ranks.loc["R", "average rank"] == 2.0  # A wins all six


def test_cli_several_references_each_get_their_own_comparison(tmp_path, capsys):
    """AP against VP and against BN tuning from one folder: the first reference keeps the plain names, each
    further one writes stats-*-vs-LABEL / ranks-*-vs-LABEL. A beats R on d_i by i + 1 points, so against A
    R loses all six datasets, by 1 point on d0."""
    import pandas as pd

    from apbench.commands.results import main
    from apbench.results.store import write_record

    for r in wins(6):
        write_record(tmp_path / "runs" / r["run_id"] / "record.json", r)
    assert main([str(tmp_path / "runs"), "--reference", "R", "--reference", "nope"]) == 2
    assert "--reference 'nope' is not a method label" in capsys.readouterr().err
    out_dir = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "--reference", "R", "--reference", "A", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "## against R: m, fixed" in out and "## against A: m, fixed" in out
    vs_r = pd.read_csv(out_dir / "ranks-m-fixed.csv", index_col=0)
    vs_a = pd.read_csv(out_dir / "ranks-m-fixed-vs-A.csv", index_col=0)
    assert vs_r.loc["A", "wins/ties/losses"] == "6/0/0" and vs_a.loc["R", "wins/ties/losses"] == "0/0/6"
    stats_a = pd.read_csv(out_dir / "stats-m-fixed-vs-A.csv")
    assert stats_a.set_index(["dataset", "method"]).loc[("d0", "R"), "Δ vs A"] == "-1.00"
    assert not list(out_dir.glob("stats-*-vs-R*"))  # the first reference: plain names only
