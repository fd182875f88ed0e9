"""Bootstrap CIs: seeded and reproducible, percentile intervals of the right statistic."""

import numpy as np
import pytest
import scipy.stats

from t2mbench.metrics.bootstrap import mean_ci, paired_difference_ci
from t2mbench.metrics.frechet import (
    embedding_stats,
    fd_ci,
    fd_difference_ci,
    fd_difference_interval,
    fd_interval,
    frechet_distance_from_stats,
)


def test_mean_ci_is_reproducible_and_seed_dependent():
    x = np.random.default_rng(0).normal(size=200)
    a, b = mean_ci(x, seed=1), mean_ci(x, seed=1)
    assert a == b
    assert mean_ci(x, seed=2) != a


def test_mean_ci_matches_the_normal_approximation_for_a_large_sample():
    x = np.random.default_rng(1).exponential(size=4000)
    low, high = mean_ci(x, resamples=4000)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert low == pytest.approx(x.mean() - 1.96 * se, abs=0.15 * se)
    assert high == pytest.approx(x.mean() + 1.96 * se, abs=0.15 * se)


def test_mean_ci_is_the_percentile_interval_of_resampled_means():
    x = np.array([0.0, 1.0, 5.0])
    rng = np.random.default_rng(7)
    means = x[rng.integers(0, 3, (500, 3))].mean(axis=1)
    assert mean_ci(x, resamples=500, seed=7) == tuple(np.quantile(means, [0.025, 0.975]))


def test_paired_difference_uses_the_same_prompts_for_both_systems():
    rng = np.random.default_rng(3)
    base = rng.normal(size=300) * 10  # large prompt effect shared by both systems
    a, b = base + 0.5 + 0.1 * rng.normal(size=300), base
    diff, low, high = paired_difference_ci(a, b)
    assert diff == pytest.approx(np.mean(a - b))
    assert 0.45 < low < diff < high < 0.55  # unpaired intervals would be ~50x wider
    with pytest.raises(ValueError, match="paired scores need the same prompts: got 3 and 2 values"):
        paired_difference_ci([1, 2, 3], [1, 2])


def test_fd_interval_is_bias_corrected_half_sampling():
    rng = np.random.default_rng(5)
    clips = [rng.normal(i * 0.05, 1.0, size=(10, 4)) for i in range(20)]
    ref = embedding_stats(rng.normal(size=(300, 4)))
    fd = lambda idx: frechet_distance_from_stats(embedding_stats(np.concatenate([clips[i] for i in idx])), ref)  # noqa: E731
    draws = np.random.default_rng(9)
    reps = np.array([fd(draws.choice(20, 10, replace=False)) for _ in range(40)])  # half the clips, no repeats
    point = fd(range(20))
    corrected = (20 * point - 10 * reps.mean()) / 10  # Richardson step on the 1/n bias
    half = scipy.stats.t.ppf(0.975, 39) * reps.std(ddof=1)  # sqrt(m / (n - m)) = 1
    iv = fd_interval(clips, ref, resamples=40, seed=9)
    assert iv.replicates == pytest.approx(reps, rel=1e-8)
    assert (iv.estimate, iv.corrected, iv.half_width) == pytest.approx((point, corrected, half), rel=1e-8)
    assert (iv.low, iv.high) == pytest.approx((corrected - half, corrected + half), rel=1e-8)  # not widened to point
    assert fd_ci(clips, ref, resamples=40, seed=9) == (iv.low, iv.high)
    assert iv.estimate_inside == (iv.low <= point <= iv.high)


def test_fd_interval_is_nan_below_four_clips():
    rng = np.random.default_rng(1)
    iv = fd_interval([rng.normal(size=(5, 3)) for _ in range(3)], embedding_stats(rng.normal(size=(50, 3))))
    assert iv.m == 1 and np.isnan(iv.low) and np.isnan(iv.high) and np.isfinite(iv.estimate)


def test_fd_difference_ci_is_paired_by_prompt():
    rng = np.random.default_rng(6)
    ref = embedding_stats(rng.normal(size=(400, 3)))
    a = {f"p{i}": rng.normal(0.3, 1.0, size=(8, 3)) for i in range(25)}
    b = {k: v - 0.3 for k, v in a.items()}  # system b is system a shifted onto the reference mean
    diff, low, high = fd_difference_ci(a, b, ref, resamples=50)
    fd = lambda s: frechet_distance_from_stats(embedding_stats(np.concatenate(list(s.values()))), ref)  # noqa: E731
    assert diff == pytest.approx(fd(a) - fd(b), rel=1e-9)
    assert 0 < low < high
    iv = fd_difference_interval(a, b, ref, resamples=50)
    sub = lambda s, idx: {k: s[k] for k in np.array(sorted(s))[idx]}  # noqa: E731
    draws = np.random.default_rng(0)
    reps = [fd(sub(a, i)) - fd(sub(b, i)) for i in (draws.choice(25, 12, replace=False) for _ in range(50))]
    assert iv.replicates == pytest.approx(reps, rel=1e-8)  # the same prompts for both systems in every draw
    assert iv.corrected == pytest.approx((25 * iv.estimate - 12 * np.mean(reps)) / 13, rel=1e-8)
    with pytest.raises(ValueError, match="paired FD comparison needs the same prompt ids in both systems"):
        fd_difference_ci(a, {"x": a["p0"]}, ref)


def test_bad_values():
    with pytest.raises(ValueError, match="a confidence interval needs at least one value"):
        mean_ci([])
    with pytest.raises(ValueError, match="scores contain NaN or Inf"):
        mean_ci([1.0, np.nan])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got 1.5"):
        mean_ci([1.0, 2.0], confidence=1.5)
