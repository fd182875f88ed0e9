"""The tests a gate runs: sign-flip permutation p-value, weighted Holm, Mann–Whitney U with a factor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EXACT_UP_TO = 16  # clips: the sign-flip p-value enumerates all 2^n sign vectors up to here
_BLOCK = 1 << 20


def sign_flip_p(d: np.ndarray, margin: float = 0.0, *, resamples: int = 10_000, seed: int = 0) -> float:
    """One-sided sign-flip permutation p-value of H0: mean(d) ≤ ``margin`` against mean(d) > margin.

    With x = d − margin, p = #{ε : mean(ε·x) ≥ mean(x)} / #ε over sign vectors ε ∈ {±1}^n: all
    2^n of them when n ≤ :data:`EXACT_UP_TO` (exact), else ``resamples`` random ones plus the
    identity, p = (1 + #) / (1 + R). Valid when x is symmetric about 0 under H0 (paired
    differences of exchangeable systems).
    """
    x = np.asarray(d, dtype=np.float64) - margin
    n = x.shape[0]
    if n == 0:
        return float("nan")
    observed = x.mean()
    tol = 1e-12 * max(1.0, float(np.abs(x).max()))
    if n <= EXACT_UP_TO:
        signs = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
        return float(np.mean(signs @ x / n >= observed - tol))
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    per_block = max(1, _BLOCK // n)
    while done < resamples:
        k = min(per_block, resamples - done)
        signs = rng.integers(0, 2, (k, n)) * 2.0 - 1.0
        hits += int(np.sum(signs @ x / n >= observed - tol))
        done += k
    return (1 + hits) / (1 + resamples)


def holm(p: Sequence[float], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted Holm adjusted p-values (Holm 1979): reject test i at family level α iff its
    adjusted p ≤ α. Order by p_i / w_i; the adjusted value of the j-th is the running maximum of
    min(1, p_(k) · Σ_{l ≥ k} w_(l) / w_(k)). Equal weights give plain Holm (p_(k)·(m − k + 1)).
    NaN p-values (untested) stay NaN and do not count."""
    p = np.asarray(p, dtype=np.float64)
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if idx.size == 0:
        return out
    order = idx[np.argsort(p[idx] / w[idx], kind="stable")]
    remaining = np.cumsum(w[order][::-1])[::-1]
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * remaining / w[order]))
    out[order] = adjusted
    return out


def mann_whitney_greater(current: Sequence[float], baseline: Sequence[float]) -> float:
    """One-sided Mann–Whitney U p-value that ``current`` tends to be larger than ``baseline``
    (exact without ties for small samples, else the normal approximation; scipy)."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(current, baseline, alternative="greater").pvalue)
