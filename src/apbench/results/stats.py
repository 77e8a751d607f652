"""What is significant: intervals that include test-sample uncertainty, paired comparisons against a
reference method within a dataset, and rank statistics across datasets.

Within a cell (runs that differ in the seed alone):
- with per-image predictions (``record["predictions"]``): a 95 % percentile bootstrap that resamples
  the seeds and, jointly for all of them, the test images (the seeds share one test set), so the
  interval covers both the seed spread and the test sample. Hand-written because scipy's
  ``stats.bootstrap`` resamples one axis of independent samples, not two crossed ones;
- without (older records): a normal interval from the seed std and the binomial variance of the
  accuracy on ``n_test`` images, ``1.96 * sqrt(std^2/n + p(1-p)/n_test)``; with one run the
  Wilson interval of that binomial alone (``scipy.stats.binomtest``). Labelled as such.

A method against the reference on one dataset:
- one run each, with predictions: the exact McNemar test (``scipy.stats.binomtest`` on the images
  exactly one of the two got right);
- several seeds, with predictions: a paired bootstrap of the difference in mean accuracy (test
  images resampled once for both methods, each method's seeds resampled);
- without predictions: an unpaired z-test of the two intervals above (conservative: it ignores that
  the two methods saw the same images).

Across datasets: the two-sided Wilcoxon signed-rank test of the per-dataset differences
(``scipy.stats.wilcoxon``; below 6 datasets it cannot reach p < 0.05 and the table says
"underpowered" instead), average ranks, and a critical-difference diagram from the Friedman /
Nemenyi post-hoc test (``scikit_posthocs``).
"""
from __future__ import annotations

import functools
import hashlib
import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from .predictions import decode
from .rows import ACC, final_ok, label_order

Z95 = float(sps.norm.ppf(0.975))
BOOT = 2000          # bootstrap resamples (fixed seed: tables are reproducible)
BOOT_SEED = 0
WILCOXON_MIN = 6     # a two-sided exact Wilcoxon needs 6 pairs to reach p < 0.05 (2/2^6 = 0.031)
ALPHA = 0.05


@functools.lru_cache(maxsize=8192)
def _decoded(pred: str, target: str, dtype: str, n: int, encoding) -> tuple[np.ndarray, bytes]:
    """(correct per image, digest of the targets) of one record's predictions; cached, since every table
    and every pair of cells asks for the same records' predictions again."""
    p, t = decode({"pred": pred, "target": target, "dtype": dtype, "n": n, "encoding": encoding})
    return p == t, hashlib.sha1(t.tobytes()).digest()


def _correct_and_targets(rows: pd.DataFrame) -> tuple[np.ndarray | None, bytes | None]:
    """(seeds x images booleans, digest of the test labels), when every run of the cell has predictions
    on one and the same test set; (None, None) otherwise."""
    stored = list(rows["predictions"])
    if not stored or not all(isinstance(s, dict) for s in stored):
        return None, None
    decoded = [_decoded(s.get("pred"), s.get("target"), s.get("dtype"), int(s.get("n", -1)), s.get("encoding"))
               for s in stored]
    if len({t for _, t in decoded}) > 1:
        return None, None
    return np.stack([c for c, _ in decoded]), decoded[0][1]


def _paired(a: tuple, b: tuple) -> tuple:
    """Two cells' (correct, targets) as ``compare`` may pair them: only on the very same test images (the
    same labels in the same order); equal counts of other images are no pairs, so (None, None)."""
    return (a[0], b[0]) if a[0] is not None and b[0] is not None and a[1] == b[1] else (None, None)


@functools.lru_cache(maxsize=2)
def _resamples(n: int) -> tuple[np.ndarray, dict]:
    """The bootstrap's image resamples for a test set of ``n`` images, as counts (BOOT x n: how often
    each image is drawn in each resample; float32 holds these integers exactly), and the generator's
    state after drawing them. Every cell and every pair of cells on one test set draws the same
    resamples from the fixed seed, so they are drawn once (a pairwise table makes hundreds of pairs)."""
    rng = np.random.default_rng(BOOT_SEED)
    images = rng.integers(0, n, size=(BOOT, n))
    offsets = (np.arange(BOOT) * n)[:, None]
    counts = np.bincount((images + offsets).ravel(), minlength=BOOT * n).reshape(BOOT, n).astype(np.float32)
    return counts, rng.bit_generator.state


@functools.lru_cache(maxsize=64)
def _seed_picks(n: int, seeds_a: int, seeds_b: int, shared: bool) -> tuple[np.ndarray, np.ndarray]:
    """The seed resamples drawn after the image resamples of ``n`` images (fixed seed): ``shared`` (both
    cells ran the same seeds) one draw for both, else A's then B's, none for a single seed. A cell's own
    interval uses A's. They depend on the counts alone, so every pair of one shape shares them."""
    rng = np.random.default_rng(BOOT_SEED)
    rng.bit_generator.state = _resamples(n)[1]
    if shared:
        pick = rng.integers(0, seeds_a, size=(BOOT, seeds_a))
        return pick, pick

    def draw(seeds: int) -> np.ndarray:
        return rng.integers(0, seeds, size=(BOOT, seeds)) if seeds > 1 else np.zeros((BOOT, 1), int)
    first = draw(seeds_a)
    return first, draw(seeds_b)


def boot_per_seed(correct: np.ndarray) -> np.ndarray:
    """BOOT x seeds: each seed's accuracy (fraction) on each shared image resample of ``correct``
    (seeds x images). Integer counts divided by n: the same numbers as averaging the resampled images."""
    return _per_seed(np.packbits(correct).tobytes(), correct.shape)


@functools.lru_cache(maxsize=2048)  # 48 kB each at 3 seeds: every cell of a 10,000-record folder
def _per_seed(bits: bytes, shape: tuple[int, int]) -> np.ndarray:
    correct = np.unpackbits(np.frombuffer(bits, np.uint8), count=shape[0] * shape[1]).reshape(shape)
    counts, _ = _resamples(shape[1])
    hits = counts @ correct.T.astype(np.float32)  # sums of integers below 2^24: exact in float32
    return hits.astype(np.float64) / shape[1]


def _boot_means(per_seed: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Bootstrap means (in %) from ``boot_per_seed``'s matrix, the seeds resampled as ``pick`` gives them."""
    return 100.0 * np.take_along_axis(per_seed, pick, axis=1).mean(axis=1)


def _interval_and_p(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile 95 % interval and two-sided p of bootstrap differences (last axis: the resamples)."""
    lo, hi = np.percentile(diff, [2.5, 97.5], axis=-1)
    tail = np.minimum((diff <= 0).sum(axis=-1), (diff >= 0).sum(axis=-1))
    return lo, hi, np.minimum(1.0, 2.0 * (tail + 1) / (BOOT + 1))


def _wilson(p: float, n: int) -> tuple[float, float]:
    ci = sps.binomtest(int(round(p * n)), n).proportion_ci(1 - ALPHA, method="wilson")
    return 100.0 * ci.low, 100.0 * ci.high


def _se_normal(mean: float, std: float, n: int, n_test) -> float:
    p = mean / 100.0
    sampling = p * (1 - p) / float(n_test) * 1e4
    return math.sqrt((0.0 if n < 2 or pd.isna(std) else std ** 2 / n) + sampling)


def cell_interval(accs, n_test=None, correct: np.ndarray | None = None) -> tuple[float, float, str]:
    """95 % interval of a cell's mean test top-1 (%) and how it was computed."""
    accs = np.asarray(accs, dtype=float)
    if correct is not None:
        means = _boot_means(boot_per_seed(correct), _seed_picks(correct.shape[1], len(correct), 1, False)[0])
        lo, hi = np.percentile(means, [2.5, 97.5])
        what = "bootstrap: test images" + (" x seeds" if len(correct) > 1 else "")
        return float(lo), float(hi), what
    if n_test is None or pd.isna(n_test) or not n_test:
        return float("nan"), float("nan"), "none (no test count)"
    mean, n = float(accs.mean()), len(accs)
    if n == 1:
        lo, hi = _wilson(mean / 100.0, int(n_test))
        return lo, hi, "binomial (Wilson), test sampling only: 1 run, no predictions"
    half = Z95 * _se_normal(mean, float(accs.std(ddof=1)), n, n_test)
    return mean - half, mean + half, "normal: seed std + binomial test sampling (no predictions)"


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p from the discordant counts (images only A / only B got right)."""
    n = a_only + b_only
    return 1.0 if n == 0 else float(sps.binomtest(a_only, n, 0.5).pvalue)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, same_seeds: bool = True) -> tuple[float, float, float]:
    """(lo, hi, p) for mean accuracy of A minus B (%), ``a``/``b``: seeds x images on the same images.
    The images are resampled once for both; ``same_seeds`` (row i of both is one seed): the seeds
    too, else each method's seeds on their own."""
    pick_a, pick_b = _seed_picks(a.shape[1], len(a), len(b), bool(same_seeds and len(a) == len(b)))
    diff = _boot_means(boot_per_seed(a), pick_a) - _boot_means(boot_per_seed(b), pick_b)
    lo, hi, p = _interval_and_p(diff)
    return float(lo), float(hi), float(p)


def compare(acc_a, acc_b, n_test, correct_a=None, correct_b=None, same_seeds: bool = False) -> dict:
    """Method A against reference B on one dataset: difference, its interval where known, p, test."""
    acc_a, acc_b = np.asarray(acc_a, float), np.asarray(acc_b, float)
    out = {"diff": float(acc_a.mean() - acc_b.mean()), "diff_lo": float("nan"), "diff_hi": float("nan")}
    if correct_a is not None and correct_b is not None and correct_a.shape[1] == correct_b.shape[1]:
        if len(correct_a) == 1 and len(correct_b) == 1:
            a, b = correct_a[0], correct_b[0]
            return out | {"p": mcnemar_exact(int((a & ~b).sum()), int((~a & b).sum())),
                          "test": "McNemar exact (1 run each)"}
        lo, hi, p = paired_bootstrap(correct_a, correct_b, same_seeds)
        pairs = "images and seeds paired" if same_seeds else "images paired, seeds not"
        return out | {"diff_lo": lo, "diff_hi": hi, "p": p, "test": f"paired bootstrap ({pairs}, B={BOOT})"}
    if n_test is None or pd.isna(n_test) or not n_test:
        return out | {"p": float("nan"), "test": "none (no predictions, no test count)"}
    se = math.hypot(_se_normal(acc_a.mean(), acc_a.std(ddof=1) if len(acc_a) > 1 else 0.0, len(acc_a), n_test),
                    _se_normal(acc_b.mean(), acc_b.std(ddof=1) if len(acc_b) > 1 else 0.0, len(acc_b), n_test))
    p = float(2 * sps.norm.sf(abs(out["diff"]) / se)) if se > 0 else float("nan")
    return out | {"diff_lo": out["diff"] - Z95 * se, "diff_hi": out["diff"] + Z95 * se, "p": p,
                  "test": "unpaired z (no predictions): seed + binomial sampling"}


def _fmt_p(p: float) -> str:
    return "-" if pd.isna(p) else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


COMPARISON_TEXT = ("diff", "ci", "p", "significant")


def comparison_text(diff: float, lo: float, hi: float, p: float) -> dict[str, str]:
    """A comparison as the stats table prints it: ``+5.05``, ``[+4.33, +5.77]``, ``0.001``, ``yes``."""
    return {"diff": f"{diff:+.2f}", "ci": f"[{lo:+.2f}, {hi:+.2f}]" if not pd.isna(lo) else "-",
            "p": _fmt_p(p), "significant": "-" if pd.isna(p) else "yes" if p < ALPHA else "no"}


CELL_COLUMNS = ["model", "protocol", "dataset", "label", "seed", ACC, "n_test", "predictions"]


def _final_cells(df: pd.DataFrame):
    """((model, protocol, dataset), {label: runs sorted by seed}) per dataset; the narrow frame and one
    stable sort keep this cheap for thousands of cells."""
    ok = final_ok(df)[CELL_COLUMNS].sort_values("seed", kind="stable")
    for key, part in ok.groupby(["model", "protocol", "dataset"], dropna=False):
        yield key, dict(iter(part.groupby("label")))


def pairwise_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Every ordered pair of cells (A, B) of one (model, protocol, dataset): A against B as
    ``cell_stats(df, reference=B)`` compares them (the same difference, interval, p and test), one row
    per pair. Each cell's bootstrap means are computed once per seed resample (they depend on the seed
    counts alone) and the pairs' intervals in one vectorised percentile, so a dataset of L cells costs
    L bootstraps, not L(L-1)."""
    rows = []
    for (model, protocol, dataset), groups in _final_cells(df):
        where = {"model": model, "protocol": protocol, "dataset": dataset}
        cells = {label: (g[ACC].to_numpy(float), g["n_test"].dropna().max(), sorted(g["seed"].tolist()),
                         _correct_and_targets(g)) for label, g in groups.items()}
        means, keep = {}, []

        def boot(label, pick):
            key = (label, id(pick))
            if key not in means:
                keep.append(pick)  # the pick stays alive, so its id names it for this dataset
                means[key] = _boot_means(boot_per_seed(cells[label][3][0]), pick)
            return means[key]

        paired, diffs = [], []
        for a in label_order(cells):
            for b in label_order(cells):
                if a == b:
                    continue
                (acc_a, n_test, seeds_a, got_a), (acc_b, _, seeds_b, got_b) = cells[a], cells[b]
                ca, cb = _paired(got_a, got_b)
                same = seeds_a == seeds_b
                if ca is None or cb is None or ca.shape[1] != cb.shape[1] or (len(ca) == 1 and len(cb) == 1):
                    rows.append(where | {"a": a, "b": b} | compare(acc_a, acc_b, n_test, ca, cb, same))
                    continue
                pick_a, pick_b = _seed_picks(ca.shape[1], len(ca), len(cb), bool(same and len(ca) == len(cb)))
                diffs.append(boot(a, pick_a) - boot(b, pick_b))
                test = "images and seeds paired" if same else "images paired, seeds not"
                paired.append(where | {"a": a, "b": b, "diff": float(acc_a.mean() - acc_b.mean()),
                                       "test": f"paired bootstrap ({test}, B={BOOT})"})
        if diffs:
            for row, lo, hi, p in zip(paired, *_interval_and_p(np.stack(diffs))):
                rows.append(row | {"diff_lo": float(lo), "diff_hi": float(hi), "p": float(p)})
    return pd.DataFrame(rows, columns=["model", "protocol", "dataset", "a", "b", "diff", "diff_lo", "diff_hi",
                                       "p", "test"])


def cell_stats(df: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """One row per (model, protocol, dataset, label): n, mean, std, 95 % interval and, with a
    ``reference`` label, the comparison with it on the same dataset."""
    rows = []
    for (model, protocol, dataset), cells in _final_cells(df):
        ref = cells.get(reference) if reference else None
        ref_got = _correct_and_targets(ref) if ref is not None else (None, None)
        for label in label_order(cells):
            g = cells[label]
            accs, n_test = g[ACC].to_numpy(float), g["n_test"].dropna().max()
            got = _correct_and_targets(g)
            correct = got[0]
            lo, hi, how = cell_interval(accs, n_test, correct)
            row = {"model": model, "protocol": protocol, "dataset": dataset, "label": label, "n": len(accs),
                   "mean": accs.mean(), "std": accs.std(ddof=1) if len(accs) > 1 else float("nan"),
                   "ci_lo": lo, "ci_hi": hi, "ci": how, "n_test": n_test}
            if ref is not None and label != reference:
                same = sorted(g["seed"].tolist()) == sorted(ref["seed"].tolist())
                c = compare(accs, ref[ACC].to_numpy(float), n_test, *_paired(got, ref_got), same)
                row |= {f"vs_{k}": v for k, v in c.items()}
            rows.append(row)
    return pd.DataFrame(rows)


def stats_tables(df: pd.DataFrame, reference: str | None = None) -> dict[tuple[str, str], pd.DataFrame]:
    """{(model, protocol): formatted table}: one row per dataset and label."""
    long = cell_stats(df, reference)
    tables = {}
    for (model, protocol), part in long.groupby(["model", "protocol"], dropna=False):
        t = pd.DataFrame({
            "dataset": part["dataset"], "method": part["label"], "n": part["n"],
            "test top-1": [f"{m:.2f}" if pd.isna(s) else f"{m:.2f} ± {s:.2f}" for m, s in zip(part["mean"], part["std"])],
            "95% CI": [f"[{lo:.2f}, {hi:.2f}]" if not pd.isna(lo) else "-" for lo, hi in zip(part["ci_lo"], part["ci_hi"])],
            "CI from": part["ci"],
        })
        if reference is not None and "vs_diff" in part:
            has = part["vs_diff"].notna()
            texts = [comparison_text(d, lo, hi, p) if h else dict.fromkeys(COMPARISON_TEXT, "-")
                     for d, lo, hi, p, h in zip(part["vs_diff"], part["vs_diff_lo"], part["vs_diff_hi"], part["vs_p"], has)]
            t[f"Δ vs {reference}"] = [x["diff"] for x in texts]
            t["Δ 95% CI"] = [x["ci"] for x in texts]
            t["p"] = [x["p"] for x in texts]
            t["test"] = [x if h else "(reference)" if lab == reference else "-"
                         for x, h, lab in zip(part["vs_test"], has, part["label"])]
            t["significant"] = [x["significant"] for x in texts]
        tables[(str(model), str(protocol))] = t.reset_index(drop=True)
    return tables


def _means_matrix(df: pd.DataFrame, model, protocol) -> pd.DataFrame:
    """datasets x labels of mean test top-1, only labels with a result on every dataset."""
    ok = final_ok(df)
    ok = ok[(ok["model"] == model) & (ok["protocol"] == protocol)]
    m = ok.groupby(["dataset", "label"])[ACC].mean().unstack()
    return m.dropna(axis=1)


def rank_table(df: pd.DataFrame, model, protocol, reference: str | None = None) -> pd.DataFrame:
    """Per label (complete over the datasets): datasets, average rank (1 = best) and, against the
    reference, wins/ties/losses and the Wilcoxon signed-rank test or why it is not given."""
    m = _means_matrix(df, model, protocol)
    if m.empty:
        return pd.DataFrame()
    ranks = m.rank(axis=1, ascending=False).mean()
    out = pd.DataFrame({"datasets": len(m), "average rank": ranks.round(2)}).reindex(label_order(m.columns))
    if reference is not None and reference in m.columns:
        d = m.sub(m[reference], axis=0)
        out["wins/ties/losses"] = [f"{(d[c] > 0).sum()}/{(d[c] == 0).sum()}/{(d[c] < 0).sum()}" for c in out.index]
        out[f"mean Δ vs {reference}"] = [f"{v:+.2f}" for v in d.mean().reindex(out.index)]
        out["Wilcoxon p"] = [_wilcoxon_text(d[c]) if c != reference else "(reference)" for c in out.index]
    return out.rename_axis("method")


def _wilcoxon_text(diffs: pd.Series) -> str:
    k = len(diffs)
    if k < WILCOXON_MIN:
        return f"underpowered ({k} dataset{'s' * (k != 1)} < {WILCOXON_MIN})"
    if (diffs == 0).all():
        return "1 (no differences)"
    return _fmt_p(float(sps.wilcoxon(diffs.to_numpy(float)).pvalue))


def friedman_table(df: pd.DataFrame, model, protocol) -> pd.DataFrame:
    """One row: the Friedman test over the labels complete on every dataset (``scipy.stats.
    friedmanchisquare``) and the Nemenyi critical difference of average ranks at alpha 0.05,
    q_0.05(k, inf) / sqrt(2) * sqrt(k (k + 1) / (6 N)) (Demsar 2006); empty below 2 datasets or 3 labels."""
    m = _means_matrix(df, model, protocol)
    n, k = m.shape
    if n < 2 or k < 3:
        return pd.DataFrame()
    test = sps.friedmanchisquare(*[m[c].to_numpy() for c in m.columns])
    q = float(sps.studentized_range.ppf(1 - ALPHA, k, np.inf)) / math.sqrt(2)
    return pd.DataFrame([{"datasets": n, "methods": k, "Friedman chi2": round(float(test.statistic), 3),
                          "p": _fmt_p(float(test.pvalue)),
                          "Nemenyi CD (ranks, alpha 0.05)": round(q * math.sqrt(k * (k + 1) / (6 * n)), 3)}])


def cd_diagram(df: pd.DataFrame, model, protocol, path) -> str | None:
    """Critical-difference diagram (Friedman/Nemenyi, scikit-posthocs) into ``path``; returns why
    not when it cannot be drawn (fewer than 2 datasets or 3 methods complete on all of them)."""
    m = _means_matrix(df, model, protocol)
    if len(m) < 2 or m.shape[1] < 3:
        return f"no critical-difference diagram: {len(m)} dataset(s) and {m.shape[1]} method(s) complete (needs >= 2 and >= 3)"
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    ranks = m.rank(axis=1, ascending=False).mean()
    sig = sp.posthoc_nemenyi_friedman(m.to_numpy())
    sig.index = sig.columns = m.columns
    friedman = sps.friedmanchisquare(*[m[c].to_numpy() for c in m.columns]).pvalue
    fig, ax = plt.subplots(figsize=(7, 0.35 * m.shape[1] + 1.5))
    sp.critical_difference_diagram(ranks, sig, ax=ax)
    p_text = _fmt_p(friedman)
    p_text = p_text.replace("<", "< ") if p_text.startswith("<") else f"= {p_text}"
    fig.suptitle(f"{model} ({protocol}): average rank over {len(m)} datasets (1 = best)\n"
                 f"Friedman p {p_text}; bars join methods the Nemenyi test cannot tell apart", fontsize="small",
                 y=1.12)  # above the rank axis scikit-posthocs draws at the top
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return None
