"""Statistics that would change a published number if they broke (issue 26 item 3): what is paired with
what, two-sided p, test-sample noise in a multi-seed interval, cells that must not merge, and the
methods table's "val (selection)". Expected values are worked out by hand in the comments."""
import math

import numpy as np
import pytest

from apbench.results.frame import records_frame
from apbench.results.predictions import encode
from apbench.results.stats import BOOT, cell_stats, pairwise_stats
from apbench.results.tables import accuracy_tables, method_tables

N = 100                      # test images
TARGET = np.arange(N) % 10   # their labels


def _preds(right: np.ndarray, target=TARGET) -> dict:
    """Predictions right exactly where ``right`` is True (a wrong prediction is the next class)."""
    return encode(np.where(right, target, (target + 1) % 10), target)


def _rec(run_id, method, seed, right, *, finished="2025-01-01T00:00:00Z", target=TARGET, **extra):
    right = np.asarray(right, bool)
    rec = {"schema": 1, "run_id": run_id, "status": "ok", "dataset": "d", "protocol": "fixed", "stage": "final",
           "model": "m", "method": method, "head": "linear", "layers": [], "seed": seed,
           "metrics": {"test_top1": 100.0 * right.mean()}, "data": {"test": len(right)},
           "predictions": _preds(right, target), "finished_at": finished}
    return rec | extra


def _vs(recs, reference="B") -> dict:
    stats = cell_stats(records_frame(recs), reference).set_index("label")
    return stats.loc["A"].to_dict()


# Three seeds that differ a lot: all right, half right, none right.
SEED_RIGHT = {0: np.ones(N, bool), 1: np.arange(N) < 50, 2: np.zeros(N, bool)}


def test_paired_bootstrap_pairs_the_same_images_of_the_same_seed_whatever_the_record_order():
    # A and B predict exactly alike, seed by seed. Paired by seed and image, every bootstrap difference is 0:
    # interval [0, 0] and p = 1. B's records finish in another seed order than A's (the frame's order).
    recs = [_rec(f"a{s}", "A", s, SEED_RIGHT[s], finished=f"2025-01-0{1 + s}") for s in (0, 1, 2)]
    recs += [_rec(f"b{s}", "B", s, SEED_RIGHT[s], finished=f"2025-01-0{3 - s}") for s in (2, 0, 1)]
    vs = _vs(recs)
    assert vs["vs_test"] == f"paired bootstrap (images and seeds paired, B={BOOT})"
    assert (vs["vs_diff"], vs["vs_diff_lo"], vs["vs_diff_hi"], vs["vs_p"]) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("a_right, b_right", [(True, False), (False, True)])
def test_paired_bootstrap_p_is_two_sided(a_right, b_right):
    # Two seeds each; A right on every image, B on none (or the reverse): every resampled difference is
    # +100 (or -100), so the smaller tail holds 0 of B resamples and p = 2 (0 + 1) / (B + 1) either way.
    recs = [_rec(f"a{s}", "A", s, np.full(N, a_right)) for s in (0, 1)]
    recs += [_rec(f"b{s}", "B", s, np.full(N, b_right)) for s in (0, 1)]
    vs = _vs(recs)
    assert vs["vs_diff"] == (100.0 if a_right else -100.0)
    assert vs["vs_p"] == pytest.approx(2 / (BOOT + 1))


@pytest.mark.parametrize("a_only, b_only, p", [
    (10, 0, 2 / 2 ** 10),     # exact McNemar, 10 discordant images all A's: 2 x 0.5^10 = 0.001953125
    (0, 10, 2 / 2 ** 10),     # ... all B's: the same p (two-sided)
    (5, 5, 1.0),              # equal: p = 1
])
def test_mcnemar_p_of_one_run_each_is_two_sided(a_only, b_only, p):
    both = np.arange(N) >= 20  # 80 images both get right
    a = both | (np.arange(N) < a_only)
    b = both | ((np.arange(N) >= 10) & (np.arange(N) < 10 + b_only))
    vs = _vs([_rec("a", "A", 0, a), _rec("b", "B", 0, b)])
    assert vs["vs_test"] == "McNemar exact (1 run each)" and vs["vs_p"] == pytest.approx(p)


def test_runs_on_different_test_images_are_never_paired():
    # Equal counts (100 images each) but other images: B's labels in another order. No pairing: the
    # unpaired z-test; A's 60 % vs B's 60 % differ by 0 with the binomial of both on 100 images.
    other = TARGET[::-1].copy()
    right = np.arange(N) < 60
    recs = [_rec("a", "A", 0, right), _rec("b", "B", 0, right, target=other)]
    vs = _vs(recs)
    assert vs["vs_test"] == "unpaired z (no predictions): seed + binomial sampling"
    se = math.hypot(*[math.sqrt(0.6 * 0.4 / 100 * 1e4)] * 2)  # 6.928 points
    assert vs["vs_diff_hi"] == pytest.approx(1.959963984540054 * se)
    # The all-pairs table (paper-style and depth tables, the browser) does not pair them either; nor
    # with two seeds each, where it would otherwise bootstrap.
    assert set(pairwise_stats(records_frame(recs))["test"]) == {"unpaired z (no predictions): seed + binomial sampling"}
    two = [_rec(f"a{s}", "A", s, right) for s in (0, 1)] + [_rec(f"b{s}", "B", s, right, target=other) for s in (0, 1)]
    assert set(pairwise_stats(records_frame(two))["test"]) == {"unpaired z (no predictions): seed + binomial sampling"}
    assert _vs(two)["vs_test"] == "unpaired z (no predictions): seed + binomial sampling"


def test_a_cell_whose_seeds_saw_different_test_images_is_not_bootstrapped_over_images():
    # Seed 1 on other images: the cell has no common test set, so its interval is the normal one from
    # the seed std and the binomial, by hand: 60, 70 -> mean 65, std 7.0711; 1.96 sqrt(50/2 + 0.65 0.35 / 100 1e4)
    recs = [_rec("a0", "A", 0, np.arange(N) < 60), _rec("a1", "A", 1, np.arange(N) < 70, target=TARGET[::-1].copy())]
    row = cell_stats(records_frame(recs)).iloc[0]
    half = 1.959963984540054 * math.sqrt(50.0 / 2 + 0.65 * 0.35 / 100 * 1e4)  # 11.267
    assert row["ci"].startswith("normal") and (row["ci_lo"], row["ci_hi"]) == pytest.approx((65 - half, 65 + half))


def test_a_multi_seed_interval_includes_test_sample_noise():
    # Three seeds that predict alike, half of the images right: no seed spread at all, so an interval over
    # seeds alone would be [50, 50]. The test sample's: 50 +- 1.96 sqrt(0.5 0.5 / 100) = [40.2, 59.8]
    # (the percentile bootstrap of 100 images lands within about a point of it).
    half_right = np.arange(N) % 2 == 0
    row = cell_stats(records_frame([_rec(f"a{s}", "A", s, half_right) for s in (0, 1, 2)])).iloc[0]
    assert row["ci"] == "bootstrap: test images x seeds" and row["std"] == 0.0
    assert row["ci_lo"] == pytest.approx(40.2, abs=1.5) and row["ci_hi"] == pytest.approx(59.8, abs=1.5)
    # Without predictions, the closed form: 70, 72, 74 on 100 images ->
    # 72 +- 1.96 sqrt(4/3 + 0.72 0.28 / 100 1e4) = 72 +- 9.0866
    plain = [_rec(f"p{s}", "P", s, np.arange(N) < a) | {"predictions": None} for s, a in ((0, 70), (1, 72), (2, 74))]
    row = cell_stats(records_frame(plain)).iloc[0]
    half = 1.959963984540054 * math.sqrt(4 / 3 + 0.72 * 0.28 / 100 * 1e4)
    assert half == pytest.approx(9.0866, abs=1e-4)
    assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((72 - half, 72 + half), rel=1e-12)


def _final(run_id, seed, acc, *, budget=8, select_seed=0, chosen_index=1, vals=(80.0, 85.0, 83.0)):
    """A vtab1k final run of AP with its selection (three scored points, one chosen)."""
    points = [{"lr": lr, "val_top1": v, "val_loss": 1.0, "run_id": f"sel{i}"}
              for i, (lr, v) in enumerate(zip((0.01, 0.03, 0.1), vals))]
    lr = points[chosen_index]["lr"]
    return {"schema": 1, "run_id": run_id, "status": "ok", "dataset": "d", "protocol": "vtab1k", "stage": "final",
            "model": "m", "method": "ap", "head": "linear", "layers": ["8"], "seed": seed,
            "config": {"method": {"name": "ap"}, "trainer": {"lr": lr, "epochs": 12},
                       "protocol": {"name": "vtab1k", "budget": budget, "select_seed": select_seed}},
            "hparams": {"lr": lr, "selected_from": {"space": {"lr": [0.01, 0.03, 0.1]}, "budget": budget,
                                                    "rule": "whole space", "select_seed": select_seed,
                                                    "chosen": {"lr": lr}, "chosen_index": chosen_index,
                                                    "val_top1": points}},
            "metrics": {"test_top1": acc}, "data": {"test": 100}, "finished_at": "2025-01-01T00:00:00Z"}


@pytest.mark.parametrize("change", [{"budget": 4}, {"select_seed": 1}])
def test_cells_with_another_budget_or_select_seed_never_merge(change):
    recs = [_final("f0", 0, 70.0), _final("f1", 1, 72.0), _final("g0", 0, 90.0, **change)]
    [table] = accuracy_tables(records_frame(recs), interval=False).values()
    assert sorted(table.loc["d"]) == ["71.00 ± 1.41", "90.00"]  # 2 seeds together, the other cell apart


def test_the_methods_table_shows_the_chosen_points_val_when_it_is_neither_first_nor_best():
    # Scores 80, 85, 83; a tie-break or retest chose the third point: its val, 83, not the first (80)
    # nor the best (85), is what chose the final runs.
    [table] = method_tables(records_frame([_final("f0", 0, 70.0, chosen_index=2)])).values()
    assert table.loc["ap", "val (selection)"] == 83.0
    [table] = method_tables(records_frame([_final("f0", 0, 70.0, chosen_index=1)])).values()
    assert table.loc["ap", "val (selection)"] == 85.0
