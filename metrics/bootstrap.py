"""Seeded percentile-bootstrap confidence intervals for scores.

- :func:`mean_ci`: the mean over clips of per-clip scores; clips resampled with replacement.
- :func:`paired_difference_ci`: mean(a − b) for two systems scored on the same prompts; the
  same resampled prompt indices are applied to both systems (a paired bootstrap).
- the Fréchet distance's own interval (resampling clips) is :func:`t2mbench.metrics.frechet.fd_ci`,
  built on :func:`percentile_interval` and :func:`resample_count`.

Every interval is [q_(α/2), q_(1−α/2)] of the bootstrap replicates (numpy's default linear
quantiles), with α = 1 − ``confidence``, from ``numpy.random.default_rng(seed)``: the same
inputs, seed and resample count give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MEAN_RESAMPLES = 10_000
CONFIDENCE = 0.95
_CHUNK_ELEMENTS = 1 << 22  # indices drawn per block for mean resampling


def mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = MEAN_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap CI of the mean of ``values`` [N] (N ≥ 1; a single value gives a zero-width interval).

    >>> mean_ci([1.0, 2.0, 3.0, 4.0], resamples=2000, seed=0)
    (1.5, 3.5)
    """
    x = _values(values)
    return percentile_interval(_resampled_means(x, resamples, seed), confidence)


def paired_difference_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = MEAN_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(mean(a − b), low, high)`` for per-prompt scores ``a``, ``b`` [N] of two systems, paired by position."""
    xa, xb = _values(a), _values(b)
    if xa.shape != xb.shape:
        raise ValueError(f"paired scores need the same prompts: got {xa.shape[0]} and {xb.shape[0]} values")
    d = xa - xb
    low, high = percentile_interval(_resampled_means(d, resamples, seed), confidence)
    return float(d.mean()), low, high


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("a confidence interval needs at least one value")
    if not np.isfinite(x).all():
        raise ValueError("scores contain NaN or Inf")
    return x


def resample_count(resamples: int) -> int:
    """``resamples`` checked to be at least 1."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    return int(resamples)


def _resampled_means(x: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    out = np.empty(resample_count(resamples))
    per_block = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, out.shape[0], per_block):
        k = min(per_block, out.shape[0] - start)
        out[start : start + k] = x[rng.integers(0, n, (k, n))].mean(axis=1)
    return out


def percentile_interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    """[q_(α/2), q_(1−α/2)] of the bootstrap replicates ``reps`` [R], α = 1 − ``confidence``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    low, high = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)

