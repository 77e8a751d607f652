"""What two trivial cues reach on a task written in the VTAB-1k layout, so a card can say what a shortcut
gives: the majority class of train800val200, and a logistic regression on each image's pixel mean and
variance (fit on train800val200, scored on test). Both read the files as a run would (grey values)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..vtab1k import read_list


def mean_var(paths) -> np.ndarray:
    """(n, 2): each image's mean and variance of its grey values in [0, 1]."""
    out = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
        out.append((a.mean(), a.var()))
    return np.asarray(out)


def majority_accuracy(train_labels, test_labels) -> float:
    """Test accuracy (%) of always answering train's most frequent class (ties: the smallest label)."""
    majority = int(np.argmax(np.bincount(np.asarray(train_labels))))
    return 100.0 * float(np.mean(np.asarray(test_labels) == majority))


def mean_var_accuracy(train_x, train_y, test_x, test_y) -> float:
    """Test accuracy (%) of a logistic regression on standardized (mean, variance) features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(train_x, train_y)
    return 100.0 * float(np.mean(clf.predict(test_x) == np.asarray(test_y)))


def task_cues(folder: Path) -> dict:
    """{classes, chance, majority, mean_var, n_fit, n_test} of the task in ``folder``."""
    fix = "write it with `apbench data prepare`"
    fit_paths, fit_y = read_list(folder / "train800val200.txt", fix)
    test_paths, test_y = read_list(folder / "test.txt", fix)
    k = int(max(fit_y + test_y)) + 1
    return {"classes": k, "chance": 100.0 / k, "majority": majority_accuracy(fit_y, test_y),
            "mean_var": mean_var_accuracy(mean_var(fit_paths), fit_y, mean_var(test_paths), test_y),
            "n_fit": len(fit_y), "n_test": len(test_y)}
