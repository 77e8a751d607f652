"""Per-point linear probes: a logistic regression on pooled features, fit on train, scored on val."""
from __future__ import annotations

import warnings

import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SETTINGS = {"model": "sklearn LogisticRegression (lbfgs, multinomial) on standardized features",
            "max_iter": 2000}


def probe_top1(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
               C: float = 1.0) -> dict:
    """Val top-1 (%) and whether lbfgs converged within ``max_iter``."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=SETTINGS["max_iter"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(train_x.double().numpy(), train_y.numpy())
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    acc = float((clf.predict(val_x.double().numpy()) == val_y.numpy()).mean() * 100)
    train_acc = float((clf.predict(train_x.double().numpy()) == train_y.numpy()).mean() * 100)
    return {"val_top1": acc, "train_top1": train_acc, "converged": converged}
