"""Linear CKA between activations, debiased (unbiased HSIC) and biased, from Gram matrices.

The centering is ckatorch's ``center_gram_matrix`` (a port of Kornblith et al.'s reference code):
``unbiased=True`` is the U-statistic estimator of HSIC (Song et al. 2012), the debiased CKA of
Kornblith et al. 2019 / Nguyen et al. 2021. We do not call ``ckatorch.cka_base`` itself because it
rebuilds both Gram matrices on every call: with 17 points that is 17x17 products of n x d features
(d up to 32k here) instead of 17. Grams are built once per point (:func:`gram`) and paired here.

Why debiased: the biased estimator (HSIC with the plain centering) of two independent random
feature sets tends to 1 when the feature size exceeds the number of images (a stem map has ~16-32k
values per image, a study ~1k images); the unbiased one stays near 0 (tests/test_analysis_cka.py).
"""
from __future__ import annotations

import torch
from ckatorch.utils import center_gram_matrix


def gram(features: torch.Tensor) -> torch.Tensor:
    """Linear-kernel Gram matrix ``X X^T`` (n x n, float64) of ``features`` (n x ...), flattened per image."""
    x = features.reshape(features.shape[0], -1).to(torch.float64)
    g = x @ x.T
    return (g + g.T) / 2  # exactly symmetric (ckatorch checks), whatever the matmul's rounding


def center(g: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    if g.shape[0] < 4 and unbiased:
        raise ValueError(f"debiased CKA needs at least 4 images, got {g.shape[0]}")
    return center_gram_matrix(g, unbiased=unbiased)


def cka_from_centered(gx: torch.Tensor, gy: torch.Tensor) -> float:
    """CKA of two centered Grams: <Kx, Ky> / (||Kx|| ||Ky||) (Frobenius); with the unbiased centering
    the inner products are (n(n-3) times) unbiased HSIC estimates."""
    num = (gx * gy).sum()
    den = torch.sqrt((gx * gx).sum() * (gy * gy).sum())
    return float(num / den) if den > 0 else float("nan")


def linear_cka(x: torch.Tensor, y: torch.Tensor, debiased: bool = True) -> float:
    """Linear CKA between two feature sets of the same n images (any trailing shape, flattened)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA compares the same images: got {x.shape[0]} and {y.shape[0]} rows")
    return cka_from_centered(center(gram(x), debiased), center(gram(y), debiased))


def cka_matrix(grams: list[torch.Tensor], debiased: bool = True) -> list[list[float]]:
    """CKA between every pair of points, from one Gram per point."""
    centered = [center(g, debiased) for g in grams]
    n = len(centered)
    out = [[float("nan")] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            out[i][j] = out[j][i] = cka_from_centered(centered[i], centered[j])
    return out
