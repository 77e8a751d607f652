"""``stats.pairwise_stats``: every ordered pair of cells of a dataset compared exactly as
``cell_stats(df, reference=B)`` compares A with B (the numbers the results browser shows), and the
shared bootstrap resamples it rests on equal averaging the resampled images one by one."""
import numpy as np
import pytest

from apbench.results.frame import records_frame
from apbench.results.stats import BOOT, BOOT_SEED, boot_per_seed, cell_stats, pairwise_stats
from test_stats import rec


def test_boot_per_seed_is_the_mean_over_each_resample_of_images():
    rng = np.random.default_rng(3)
    correct = rng.random((3, 257)) < 0.7
    images = np.random.default_rng(BOOT_SEED).integers(0, 257, size=(BOOT, 257))  # the draws of the fixed seed
    by_hand = np.stack([correct[:, idx].mean(axis=1) for idx in images])
    assert np.array_equal(boot_per_seed(correct), by_hand)  # exactly: integer counts over n


def _records():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, 300)

    def preds(p_right, seed):
        r = np.random.default_rng(seed)
        return np.where(r.random(300) < p_right, target, (target + 1) % 5)

    out = []
    for method, p_right, seeds in (("A", 0.8, (0, 1, 2)), ("B", 0.7, (0, 1, 2)), ("C", 0.75, (0, 5))):
        for s in seeds:
            pr = preds(p_right, 100 * ord(method) + s)
            out.append(rec(f"{method}{s}", method, 100 * float((pr == target).mean()), seed=s, pred=pr, target=target))
    for method, seed in (("D", 7), ("E", 8)):  # one run each: McNemar
        pr = preds(0.6, seed)
        out.append(rec(method, method, 100 * float((pr == target).mean()), pred=pr, target=target))
    out.append(rec("F", "F", 65.0, n_test=300))  # no predictions: the unpaired z-test
    return out


def test_every_pair_equals_the_stats_table_against_that_reference():
    df = records_frame(_records())
    pairs = pairwise_stats(df)
    labels = ["A", "B", "C", "D", "E", "F"]
    assert len(pairs) == 6 * 5 and set(pairs["a"]) == set(labels)
    for ref in labels:
        table = cell_stats(df, reference=ref).set_index("label")
        for _, row in pairs[pairs["b"] == ref].iterrows():
            want = table.loc[row["a"]]
            got = (row["diff"], row["diff_lo"], row["diff_hi"], row["p"], row["test"])
            expected = (want["vs_diff"], want["vs_diff_lo"], want["vs_diff_hi"], want["vs_p"], want["vs_test"])
            same = [x == y or (x != x and y != y) for x, y in zip(got, expected)]  # exactly; NaN where both are
            assert all(same), (row["a"], ref, got, expected)
    by = pairs.set_index(["a", "b"])
    assert by.loc[("D", "E"), "test"] == "McNemar exact (1 run each)"
    assert by.loc[("A", "B"), "test"] == "paired bootstrap (images and seeds paired, B=2000)"
    assert by.loc[("A", "C"), "test"] == "paired bootstrap (images paired, seeds not, B=2000)"
    assert by.loc[("A", "F"), "test"].startswith("unpaired z")
    a = df[df["method"] == "A"]["metrics.test_top1"].mean()
    b = df[df["method"] == "B"]["metrics.test_top1"].mean()
    assert by.loc[("A", "B"), "diff"] == pytest.approx(a - b, abs=1e-12)
    assert by.loc[("B", "A"), "diff"] == pytest.approx(b - a, abs=1e-12)


def test_pairs_stay_within_a_dataset():
    recs = [rec("a1", "A", 80.0, dataset="d1", n_test=100), rec("b1", "B", 70.0, dataset="d1", n_test=100),
            rec("a2", "A", 60.0, dataset="d2", n_test=100)]
    pairs = pairwise_stats(records_frame(recs))
    assert sorted(zip(pairs["dataset"], pairs["a"], pairs["b"])) == [("d1", "A", "B"), ("d1", "B", "A")]
