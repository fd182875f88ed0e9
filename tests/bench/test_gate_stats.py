"""The gate's tests: exact sign-flip p-values, weighted Holm, Mann–Whitney, golden numbers."""

import numpy as np
import pytest

from t2mbench.bench.gates.stats import holm, mann_whitney_greater, sign_flip_p


def test_sign_flip_is_exact_for_small_n():
    # 8 sign vectors of [1, 2, 3]; only all-plus reaches the observed mean 2
    assert sign_flip_p(np.array([1.0, 2.0, 3.0])) == 0.125
    # [1, -1]: means 0, 1, -1, 0 -> three of four are >= 0
    assert sign_flip_p(np.array([1.0, -1.0])) == 0.75
    # the margin shifts the null: d - 1 = [0, 1, 2] -> means >= 1: (+,+,+), (-,+,+)... count exactly
    x = np.array([0.0, 1.0, 2.0])
    signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    assert sign_flip_p(x + 1.0, margin=1.0) == np.mean(signs @ x / 3 >= x.mean() - 1e-12)


def test_sign_flip_monte_carlo_is_valid_under_the_null():
    rng = np.random.default_rng(0)
    ps = np.array([sign_flip_p(rng.normal(size=40), resamples=500, seed=i) for i in range(400)])
    assert 0.03 <= np.mean(ps <= 0.05) <= 0.07  # size ~5 % under a symmetric null
    assert sign_flip_p(rng.normal(0.8, 1.0, size=40), resamples=2000) < 0.001 + 1 / 2001


def test_holm_golden_and_weighted():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.01, np.nan, 0.2])
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.2)
    # weights 1:3 -> order by p/w: 0.03/3 = 0.01 < 0.02/1; adjusted 0.03 * 4/3 = 0.04, then max(0.04, 0.02*1/1)
    assert holm([0.02, 0.03], [1.0, 3.0]).tolist() == pytest.approx([0.04, 0.04])


def test_mann_whitney_exact_golden():
    # complete separation of 5 vs 5: p = 1 / C(10, 5)
    assert mann_whitney_greater([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) == pytest.approx(1 / 252)
