"""Debiased linear CKA (issue 17): closed forms, and the bias it removes."""
import math

import pytest
import torch

from apbench.analysis.cka import cka_matrix, gram, linear_cka


def _x(n=60, d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("debiased", [True, False])
def test_cka_of_a_representation_with_itself_is_one(debiased):
    x = _x()
    assert linear_cka(x, x, debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("debiased", [True, False])
def test_cka_is_invariant_to_an_orthogonal_transform_and_to_isotropic_scaling(debiased):
    x, y = _x(seed=0), _x(d=12, seed=1) + 0.5 * _x(seed=0)[:, :12]  # two related representations
    q, _ = torch.linalg.qr(_x(n=20, d=20, seed=2))  # a random 20x20 orthogonal matrix
    assert torch.allclose(q.T @ q, torch.eye(20, dtype=torch.float64), atol=1e-12)
    base = linear_cka(x, y, debiased)
    assert linear_cka(x @ q, y, debiased) == pytest.approx(base, abs=1e-10)
    assert linear_cka(3.7 * x, 0.01 * y, debiased) == pytest.approx(base, abs=1e-10)
    assert 0.1 < base < 0.99  # a value that could move if invariance failed


def test_independent_features_wider_than_the_sample_give_cka_near_zero_only_when_debiased():
    # 200 images, 4,000 features each (a stem map has ~16k values per image, a study ~1k images). The
    # debiased estimate of independent features is 0 in expectation with a spread of order 1/n.
    debiased, biased = [], []
    for seed in range(5):
        x, y = _x(n=200, d=4000, seed=2 * seed), _x(n=200, d=4000, seed=2 * seed + 1)
        debiased.append(linear_cka(x, y, True))
        biased.append(linear_cka(x, y, False))
    assert max(abs(v) for v in debiased) < 0.05
    assert min(biased) > 0.9  # the biased estimator calls two unrelated random representations similar


def test_cka_matrix_is_symmetric_with_a_unit_diagonal_and_matches_pairwise_calls():
    xs = [_x(n=30, d=d, seed=s) for s, d in enumerate((5, 50, 500))]
    m = cka_matrix([gram(x) for x in xs])
    for i in range(3):
        assert m[i][i] == pytest.approx(1.0, abs=1e-12)
        for j in range(3):
            assert m[i][j] == m[j][i]
            assert m[i][j] == pytest.approx(linear_cka(xs[i], xs[j]), abs=1e-12)


def test_debiased_cka_refuses_fewer_than_four_images():
    with pytest.raises(ValueError, match="at least 4 images"):
        linear_cka(_x(n=3), _x(n=3))
    assert not math.isnan(linear_cka(_x(n=4), _x(n=4, seed=5)))
