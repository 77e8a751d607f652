"""Budget curves (issue 24 item 3): the expected best of n select runs against hand-computed values,
the ranking at each budget and its note, the edge table, and the files `apbench results` writes."""
import itertools

import numpy as np
import pytest

from apbench.results import budget
from apbench.results.frame import records_frame


def test_expected_best_of_n_equals_a_hand_computed_example():
    # [1, 2, 3, 4], n = 2: the 6 pairs have maxima 2, 3, 4, 3, 4, 4 -> 20 / 6
    assert budget.expected_max([3, 1, 4, 2], 2) == pytest.approx(20 / 6)
    assert budget.expected_max([3, 1, 4, 2], 1) == pytest.approx(2.5)          # the mean
    assert budget.expected_max([3, 1, 4, 2], 4) == pytest.approx(4.0)          # all of them: the max
    # ties: [80, 80, 85], n = 2: pairs (80, 80), (80, 85), (80, 85) -> (80 + 85 + 85) / 3
    assert budget.expected_max([80, 85, 80], 2) == pytest.approx(250 / 3)
    # one 90 among seven 40s: P(90 among n) = 1 - C(7, n) / C(8, n) = n / 8
    assert list(budget.curve([90] + [40] * 7)) == pytest.approx([40 + 50 * n / 8 for n in range(1, 9)])
    with pytest.raises(ValueError, match="n=5 must be between 1 and the 4 values"):
        budget.expected_max([1, 2, 3, 4], 5)


def test_the_formula_is_the_mean_over_every_subset():
    rng = np.random.default_rng(1)
    v = rng.integers(60, 90, 7).astype(float)
    for n in range(1, 8):
        subsets = list(itertools.combinations(v, n))
        assert budget.expected_max(v, n) == pytest.approx(np.mean([max(s) for s in subsets]))


def test_the_band_holds_the_curve_and_is_a_point_when_every_run_scores_the_same():
    lo, hi = budget.band([80.0] * 5, resamples=50)
    assert list(lo) == list(hi) == [80.0] * 5
    v = [70, 75, 80, 85, 82, 60]
    lo, hi = budget.band(v, resamples=300)
    c = budget.curve(v)
    assert all(lo <= c + 1e-9) and all(c <= hi + 1e-9) and hi[-1] <= 85


def _final(method, values, seed=0, phases=None, extra=None):
    runs = [{"lr": 0.1 * (i + 1), "val_top1": v, "val_loss": 1.0, "run_id": f"{method}-s{i}",
             **({"phase": phases[i], "seed": 0} if phases else {})} for i, v in enumerate(values)]
    sel = {"space": {"lr": [0.1, 0.2]}, "budget": len(values), "rule": "grid", "points": [], "select_seed": 0,
           "chosen": {"lr": 0.1}, "chosen_index": 0, "val_top1": runs, **(extra or {})}
    return {"schema": 1, "run_id": f"{method}-f{seed}", "status": "ok", "dataset": "d", "protocol": "vtab1k",
            "stage": "final", "model": "m", "method": method, "head": "linear", "layers": [], "seed": seed,
            "hparams": {"lr": 0.1, "selected_from": sel, "edge_flags": []},
            "metrics": {"test_top1": 50.0}, "params": {}, "efficiency": {}, "finished_at": "2025-01-01T00:00:00Z"}


def test_the_rank_table_says_when_the_ranking_depends_on_the_budget():
    # a: one 90 among seven 40s (40 + 50 n / 8: 52.5, 65, 90); b: eight 70s. b leads at 2 and 4, a at 8.
    df = records_frame([_final("a", [90] + [40] * 7), _final("a", [90] + [40] * 7, seed=1), _final("b", [70] * 8)])
    [(table, note)] = budget.rank_tables(df).values()
    assert table.to_dict("index") == {"a": {"select runs": 8, "n=2": "2 (52.50)", "n=4": "2 (65.00)", "n=8": "1 (90.00)"},
                                      "b": {"select runs": 8, "n=2": "1 (70.00)", "n=4": "1 (70.00)", "n=8": "2 (70.00)"}}
    assert note == ("The ranking depends on the budget: 1 pair(s) of methods change order between budgets (curves "
                    "cross). Rank at n=2, n=4, n=8: a 2 -> 2 -> 1; b 1 -> 1 -> 2.")
    same = records_frame([_final("a", [80] * 4), _final("b", [70] * 4)])
    [(table, note)] = budget.rank_tables(same).values()
    assert list(table.columns) == ["select runs", "n=2", "n=4"] and "does not depend on the budget" in note


def test_retest_seeds_are_not_draws_and_the_reserve_is():
    phases = ["select", "select", "extension", "reserve", "retest"]
    df = records_frame([_final("a", [70, 80, 90, 60, 99], phases=phases)])
    assert budget.curve_table(df)["n"].max() == 4                     # the retest run (99) is left out
    assert budget.curve_table(df)["expected_best"].iloc[-1] == 90.0


def test_the_edge_table_reads_the_rules_record_and_derives_old_ones():
    new = _final("a", [80, 81], extra={"bounds": {"lr": [0.0, None]}, "edges": {"lr": {
        "candidates": [0.1, 0.2, 0.4], "extended": [0.4], "chosen": 0.2, "status": "resolved"}}})
    old = _final("b", [80, 81])
    old["hparams"]["selected_from"]["chosen"] = {"lr": 0.2}
    old["hparams"]["selected_from"]["edge_flags"] = ["lr=high"]
    [table] = budget.edge_tables(records_frame([new, old])).values()
    assert table.to_dict("records") == [
        {"method": "a", "key": "lr", "space": "0.1 .. 0.2 (2)", "natural bound": "[0, -]",
         "added by the edge rule": "0.4", "chosen": "0.2", "status": "resolved"},
        {"method": "b", "key": "lr", "space": "0.1 .. 0.2 (2)", "natural bound": "-",
         "added by the edge rule": "-", "chosen": "0.2", "status": "edge unresolved"}]


def test_apbench_results_writes_and_prints_them(tmp_path, capsys):
    from apbench.cli import main
    from apbench.results.store import write_record

    for r in [_final("a", [90] + [40] * 7), _final("b", [70] * 8)]:
        write_record(tmp_path / "runs" / r["run_id"] / "record.json", r)
    assert main(["results", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "## select budget: expected best val top-1 of n select runs (rank): m, vtab1k, d" in out
    assert "The ranking depends on the budget" in out and "## edges of the search spaces: m, vtab1k, d" in out
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"budget-m-vtab1k-d.png", "budget-ranks-m-vtab1k-d.md", "edges-m-vtab1k-d.md", "budget_curves.csv",
            "val-vs-keys-m-vtab1k-d-a.png", "val-vs-keys-m-vtab1k-d-b.png"} <= names


def test_every_method_of_an_eleven_cell_table_gets_its_own_colour(tmp_path, monkeypatch):
    """A CNN methods table has 11 cells; with tab10 the 11th drew in the 1st one's blue."""
    import matplotlib.pyplot as plt

    figs = []
    monkeypatch.setattr(plt, "close", figs.append)
    recs = [_final(f"method{i:02d}", [50 + i] * 4) for i in range(11)]
    [path] = budget.plot_curves(records_frame(recs), tmp_path)
    [fig] = figs
    left = fig.axes[0]
    colours = [line.get_color() for line in left.get_lines()]
    assert len(colours) == 11 and len(set(colours)) == 11
