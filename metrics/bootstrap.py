"""Seeded percentile-bootstrap confidence intervals for scores.

- :func:`mean_ci`: the mean over clips of per-clip scores; clips resampled with replacement.
- :func:`paired_difference_ci`: mean(a − b) for two systems scored on the same prompts; the
  same resampled prompt indices are applied to both systems (a paired bootstrap).
- :func:`fd_ci` / :func:`fd_difference_ci`: Fréchet distance, resampling *clips* (all frames of
  a drawn clip enter the statistics, once per draw) of the generated set; the reference
  statistics are held fixed, as stable-audio-metrics' shipped reference statistics are, so
  the interval covers the sampling variability of the generated clips.

Every interval is [q_(α/2), q_(1−α/2)] of the bootstrap replicates (numpy's default linear
quantiles), with α = 1 − ``confidence``, from ``numpy.random.default_rng(seed)``: the same
inputs, seed and resample count give the same interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from t2mbench.metrics.frechet import GaussianStats, psd_factor

MEAN_RESAMPLES = 10_000
FD_RESAMPLES = 100
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
    return _interval(_resampled_means(x, resamples, seed), confidence)


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
    low, high = _interval(_resampled_means(d, resamples, seed), confidence)
    return float(d.mean()), low, high


def fd_ci(
    clips: Sequence[np.ndarray],
    reference: GaussianStats,
    *,
    resamples: int = FD_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap CI of FD(generated, reference) resampling the generated ``clips`` (each [n_i, D] frames)."""
    boot = _FdBootstrap(clips, reference)
    rng = np.random.default_rng(seed)
    reps = [boot.fd(boot.weights(rng.integers(0, len(clips), len(clips)))) for _ in range(_count(resamples))]
    return _interval(np.asarray(reps), confidence)


def fd_difference_ci(
    clips_a: Mapping[str, np.ndarray],
    clips_b: Mapping[str, np.ndarray],
    reference: GaussianStats,
    *,
    resamples: int = FD_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(FD_a − FD_b, low, high)`` for two systems' frames per prompt id, resampling the same
    prompts for both (the id sets must be equal)."""
    if set(clips_a) != set(clips_b):
        raise ValueError("paired FD comparison needs the same prompt ids in both systems")
    ids = sorted(clips_a)
    boot_a = _FdBootstrap([clips_a[i] for i in ids], reference)
    boot_b = _FdBootstrap([clips_b[i] for i in ids], reference)
    full = np.ones(len(ids))
    diff = boot_a.fd(full) - boot_b.fd(full)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(_count(resamples)):
        w = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids)).astype(np.float64)
        reps.append(boot_a.fd(w) - boot_b.fd(w))
    low, high = _interval(np.asarray(reps), confidence)
    return float(diff), low, high


class _FdBootstrap:
    """FD of clip-weighted frame statistics against fixed reference statistics.

    With frame weights w (the draw count of the frame's clip), N* = Σ w, μ* = Σ w y / N* and
    Σ* = Σ w (y − μ*)(y − μ*)ᵀ / (N* − 1). With the reference factor F (Σ_ref = F Fᵀ) and
    G = √w (y − μ*) F, tr (Σ_ref Σ*)^½ = ‖G‖_* / √(N* − 1): singular values of G when it has
    fewer rows than columns, else square roots of the eigenvalues of GᵀG (negative ones, from
    rounding, count as 0), which is accurate to ~1e-8 relative: ample for an interval.
    """

    def __init__(self, clips: Sequence[np.ndarray], reference: GaussianStats) -> None:
        if len(clips) == 0:
            raise ValueError("an FD confidence interval needs at least one clip")
        frames = [np.asarray(c, dtype=np.float64) for c in clips]
        if any(f.ndim != 2 or f.shape[1] != reference.dim for f in frames):
            raise ValueError(f"clip frames must each be [n, {reference.dim}]")
        self.frames = np.concatenate(frames)
        self.clip_of = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
        self.n_clips = len(frames)
        self.factor = psd_factor(reference.sigma)  # [D, r]
        self.projected = self.frames @ self.factor  # [N, r]
        self.reference = reference
        self.tr_ref = float(np.trace(reference.sigma))

    def weights(self, draws: np.ndarray) -> np.ndarray:
        return np.bincount(draws, minlength=self.n_clips).astype(np.float64)

    def fd(self, clip_weights: np.ndarray) -> float:
        w = clip_weights[self.clip_of]
        used = w > 0
        w, y, z = w[used], self.frames[used], self.projected[used]
        n = w.sum()
        if n < 2:
            return float("nan")
        mu = w @ y / n
        sw = np.sqrt(w)[:, None]
        centred = sw * (y - mu)
        g = sw * (z - mu @ self.factor)
        if g.shape[0] <= g.shape[1]:
            nuclear = float(np.linalg.svd(g, compute_uv=False).sum())
        else:
            nuclear = float(np.sqrt(np.clip(np.linalg.eigvalsh(g.T @ g), 0.0, None)).sum())
        diff = mu - self.reference.mu
        return float(diff @ diff + self.tr_ref + (np.sum(centred * centred) - 2.0 * nuclear * np.sqrt(n - 1)) / (n - 1))


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("a confidence interval needs at least one value")
    if not np.isfinite(x).all():
        raise ValueError("scores contain NaN or Inf")
    return x


def _count(resamples: int) -> int:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    return int(resamples)


def _resampled_means(x: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    out = np.empty(_count(resamples))
    per_block = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, out.shape[0], per_block):
        k = min(per_block, out.shape[0] - start)
        out[start : start + k] = x[rng.integers(0, n, (k, n))].mean(axis=1)
    return out


def _interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    low, high = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)

