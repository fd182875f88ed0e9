"""Mergeable sufficient statistics for set-level metrics: FD's count, sum and sum of outer products.

A worker that embeds a shard of the clips keeps :class:`SufficientStats` (``n``, ``Σx``,
``Σxxᵀ``, float64); shards merge by adding them (:meth:`SufficientStats.merge`, associative
and order-free up to float rounding), and the merged statistics give the mean and the
unbiased covariance of all rows, hence exactly the FD a single process computes on all the
clips, not an average of per-shard FDs. To keep the raw second moment well conditioned every
shard accumulates rows minus a shared ``shift`` (any fixed vector, e.g. the reference mean;
zero by default): the covariance is shift-invariant and the mean adds it back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from t2mbench.metrics.frechet import GaussianStats, add_scatter, symmetric_from_upper


@dataclass
class SufficientStats:
    """``n`` rows' sum and sum of outer products, of the rows minus ``shift``."""

    n: int
    total: np.ndarray  # [D]
    outer: np.ndarray  # [D, D], upper triangle, Fortran order (BLAS dsyrk writes it)
    shift: np.ndarray  # [D]

    @classmethod
    def empty(cls, dim: int, shift: np.ndarray | None = None) -> SufficientStats:
        shift = np.zeros(dim) if shift is None else np.asarray(shift, dtype=np.float64).copy()
        return cls(0, np.zeros(dim), np.zeros((dim, dim), order="F"), shift)

    @classmethod
    def of(cls, x: np.ndarray, shift: np.ndarray | None = None) -> SufficientStats:
        """The statistics of embedding rows ``x`` [n, D]."""
        x = np.asarray(x)
        stats = cls.empty(x.shape[1], shift)
        stats.update(x)
        return stats

    def update(self, x: np.ndarray) -> None:
        """Add rows ``x`` [n, D] (float32 rows are read block by block, products summed in float64)."""
        x = np.asarray(x) if np.asarray(x).dtype == np.float32 else np.asarray(x, dtype=np.float64)
        self.total += add_scatter(self.outer, x, self.shift)
        self.n += x.shape[0]

    def merge(self, other: SufficientStats) -> SufficientStats:
        """The statistics of both shards' rows (same dimension and shift, else ValueError)."""
        if other.total.shape != self.total.shape or not np.array_equal(other.shift, self.shift):
            raise ValueError("sufficient statistics merge only with the same dimension and shift")
        outer = np.asfortranarray(self.outer + other.outer)
        return SufficientStats(self.n + other.n, self.total + other.total, outer, self.shift)

    @classmethod
    def merge_all(cls, shards: Iterable[SufficientStats]) -> SufficientStats:
        shards = list(shards)
        merged = shards[0]
        for s in shards[1:]:
            merged = merged.merge(s)
        return merged

    def gaussian(self) -> GaussianStats:
        """Mean and unbiased covariance (at least two rows)."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 embedding frames, got {self.n}")
        mean = self.total / self.n
        sigma = symmetric_from_upper(self.outer)
        sigma -= np.outer(mean, mean * self.n)
        sigma /= self.n - 1
        return GaussianStats(mean + self.shift, sigma, self.n)


__all__ = ["SufficientStats"]
