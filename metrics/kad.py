"""Kernel Audio Distance (KAD, Chung et al. 2025, the ``kadtk`` package): an unbiased MMD² with a
Gaussian kernel, scaled by 100.

For reference embeddings x [m, D] and generated embeddings y [n, D] (rows are embedding frames;
the frames of all clips are stacked, as kadtk's ``load_embeddings`` concatenates them):

    k(a, b) = exp(−γ ‖a − b‖²),   γ = 1 / (2 h² + 1e-8)
    KAD = 100 · [ Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (n(n−1)) − 2 Σ_{i,j} k(x_i, y_j) / (mn) ]

(kadtk 1.1.0 ``calc_kernel_audio_distance``: ``SCALE_FACTOR = 100``, ``eps = 1e-8``, the diagonal
of both within-set kernel matrices removed.) The estimator is unbiased, so KAD can be negative
when the two sets come from the same distribution; it is reported as computed, as kadtk does.

Bandwidth h: the median of the pairwise Euclidean distances within the **reference** set
(``torch.median`` of ``torch.pdist``: for an even number of pairs the *lower* of the two middle
values, reproduced here). Decision (the upstream differs between releases): kadtk on GitHub
(``YoonjinXD/kadtk`` master) takes the median of its first argument, the reference set, as the
paper says; the PyPI release 1.1.0 takes it from its second argument, the evaluated set. t2mbench
follows the paper and GitHub; pass ``bandwidth=median_pairwise_distance(y)`` for the 1.1.0
value (both are parity-tested, ``tests/metrics/test_kad.py``).

Precision: float64 throughout by default (kadtk computes in float32); ``precision="mixed"`` takes
the Gram products x·yᵀ (the O(N²D) part) in float32 on rows centred at the reference mean, and
everything else (norms, distances, kernels, sums) in float64: 1.5x faster than the float64 path
on one CPU thread at 10,000 x 1,024 (30.7 s against 45.0 s; ``benchmarks/test_kad.py``), and it
differs from the float64 path by ≤ 5e-7 relative on the fixture sets and 1.1e-8 on the benchmark
set, where kadtk's float32 differs from kadtk's own float64 run by 6.1e-4.

On the three committed fixture sets (``tests/fixtures/kad/``, made by
``tools/fixtures/make_kad.py``) kadtk's own function run with ``precision=torch.float64`` agrees
with this module to ≤ 1.1e-7 relative (what remains is kadtk's float32 median, which it computes
in float32 whatever the precision); kadtk's float32 default differs from both by 6e-6 to 2.4e-5
relative with the reference bandwidth and up to 1.3e-4 with 1.1.0's: KAD is a difference of
kernel means of order 0.1-1 that nearly cancel, so float32 rounding of the means is amplified.

Streaming and sharding (:class:`KadReference`, :class:`KadShard`): the reference side (its rows,
its bandwidth and its kernel sum) is fixed before any generated clip arrives; a generated shard
keeps its rows, Σ k(x, y) against the reference and its own within-shard Σ k(y_i, y_j).
Two shards merge exactly by adding these sums plus the cross-shard kernel sum (which needs both
shards' rows: the within-set term is a U-statistic over all pairs, with no fixed-size sufficient
statistic for a Gaussian kernel). The merged KAD equals the single-pass value to rounding.

The confidence interval (:func:`kad_interval`) is FD's bias-corrected half-sampling over clips
(:func:`~t2mbench.metrics.frechet.subsample_interval`) with the reference held fixed. KAD is
unbiased, so the Richardson step estimates a bias near zero and the interval is centred near
the estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from t2mbench.metrics.base import MetricError, MetricResult, ScoringItem
from t2mbench.metrics.bootstrap import CONFIDENCE
from t2mbench.metrics.embedding_metric import EmbeddingMetric, EmbeddingProtocol
from t2mbench.metrics.frechet import FD_CI_METHOD, FD_RESAMPLES, FdInterval, frames_of, subsample_interval
from t2mbench.metrics.setting_checks import bootstrap, number, one_of

KAD_SCALE = 100.0  # kadtk SCALE_FACTOR
KAD_EPS = 1e-8  # kadtk eps in γ = 1 / (2 h² + eps)
BLOCK_ROWS = 1024  # rows of a kernel block: 1024 × N float64
PRECISIONS = ("float64", "mixed")


def _rows(x: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float64) if not isinstance(x, torch.Tensor) else x)
    t = t.to(torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{what} must have shape [N, D], got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contain NaN or Inf")
    return t


def _sq_dist(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor, mixed: bool = False
             ) -> torch.Tensor:
    """‖a_i − b_j‖² [len a, len b] (float64) by the Gram expansion, clamped at 0; ``mixed``: ``a``
    and ``b`` are float32 copies of rows centred by the caller and the Gram a·bᵀ is float32, the
    norms (float64) and the rest float64."""
    if mixed:
        d2 = torch.mm(a, b.T).to(torch.float64).mul_(-2.0)
        return d2.add_(a_sq[:, None]).add_(b_sq[None, :]).clamp_(min=0.0)
    d2 = torch.addmm(a_sq[:, None] + b_sq[None, :], a, b.T, beta=1.0, alpha=-2.0)
    return d2.clamp_(min=0.0)


def _gram_rows(x: torch.Tensor, mixed: bool) -> torch.Tensor:
    """The rows the Gram products read: ``x`` itself, or its float32 copy (``mixed``), made once."""
    return x.to(torch.float32) if mixed else x


def median_pairwise_distance(x: np.ndarray | torch.Tensor) -> float:
    """kadtk's bandwidth rule on rows ``x`` [N, D], N ≥ 2: the median of the N(N−1)/2 pairwise
    Euclidean distances, the lower middle value when their count is even (``torch.median``).

    Distances are float64 (kadtk: float32 ``torch.pdist``; the two medians differ by ~1e-7
    relative). The squared distances of the upper triangle are kept (N²/2 × 8 bytes) and the
    median is taken on them (the square root is monotone)."""
    x = _rows(x, "embeddings")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"a median pairwise distance needs at least 2 rows, got {n}")
    return float(np.sqrt(_lower_median(_upper_sq_dists(x - x.mean(dim=0)))))


def _upper_sq_dists(x: torch.Tensor, mixed: bool = False) -> np.ndarray:
    n = x.shape[0]
    sq = (x * x).sum(dim=1)
    xg = _gram_rows(x, mixed)
    out = np.empty(n * (n - 1) // 2)
    pos = 0
    with torch.inference_mode():
        for i0 in range(0, n - 1, BLOCK_ROWS):
            i1 = min(i0 + BLOCK_ROWS, n)
            d2 = _sq_dist(xg[i0:i1], xg[i0:], sq[i0:i1], sq[i0:], mixed).numpy()
            for r in range(i1 - i0):
                row = d2[r, r + 1:]
                out[pos:pos + row.size] = row
                pos += row.size
    return out


def _lower_median(values: np.ndarray) -> float:
    k = (values.size - 1) // 2
    return float(np.partition(values, k)[k])


def _gamma(bandwidth: float) -> float:
    if not np.isfinite(bandwidth) or bandwidth < 0:
        raise ValueError(f"KAD bandwidth must be a finite number >= 0, got {bandwidth}")
    return 1.0 / (2.0 * bandwidth**2 + KAD_EPS)


def kernel_sum(a: torch.Tensor, b: torch.Tensor, gamma: float, mixed: bool = False) -> float:
    """Σ_{i,j} exp(−γ‖a_i − b_j‖²) over all pairs of rows (float64, blocks of rows; ``mixed``: see :func:`_sq_dist`)."""
    a_sq, b_sq = (a * a).sum(dim=1), (b * b).sum(dim=1)
    ag, bg = _gram_rows(a, mixed), _gram_rows(b, mixed)
    total = 0.0
    with torch.inference_mode():
        for i0 in range(0, a.shape[0], BLOCK_ROWS):
            i1 = min(i0 + BLOCK_ROWS, a.shape[0])
            total += float(_sq_dist(ag[i0:i1], bg, a_sq[i0:i1], b_sq, mixed).mul_(-gamma).exp_().sum())
    return total


def within_kernel_sum(a: torch.Tensor, gamma: float, mixed: bool = False) -> float:
    """Σ_{i≠j} exp(−γ‖a_i − a_j‖²) over ordered pairs of distinct rows: twice the upper triangle,
    computed block by block on the upper triangle only."""
    n = a.shape[0]
    sq = (a * a).sum(dim=1)
    ag = _gram_rows(a, mixed)
    total = 0.0
    with torch.inference_mode():
        for i0 in range(0, n, BLOCK_ROWS):
            i1 = min(i0 + BLOCK_ROWS, n)
            k = _sq_dist(ag[i0:i1], ag[i0:], sq[i0:i1], sq[i0:], mixed).mul_(-gamma).exp_()
            total += 2.0 * float(torch.triu(k[:, : i1 - i0], diagonal=1).sum()) + 2.0 * float(k[:, i1 - i0:].sum())
    return total


@dataclass(frozen=True)
class KadReference:
    """The fixed reference side: rows [m, D] (float64, minus ``center``, the reference mean, which
    every shard subtracts too: distances do not change), bandwidth h, γ, Σ_{i≠j} k(x_i, x_j), and
    the precision of the Gram products (``"float64"`` or ``"mixed"``, see the module docstring)."""

    rows: torch.Tensor
    bandwidth: float
    gamma: float
    within: float
    center: torch.Tensor
    precision: str = "float64"

    @property
    def mixed(self) -> bool:
        return self.precision == "mixed"

    @property
    def n(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def of(cls, x: np.ndarray | torch.Tensor, *, bandwidth: float | None = None, precision: str = "float64"
           ) -> KadReference:
        """Reference rows ``x`` [m, D], m ≥ 2; ``bandwidth`` None: :func:`median_pairwise_distance` of x.

        With the median rule the squared distances are computed once and serve both the median
        and the kernel sum."""
        if precision not in PRECISIONS:
            raise ValueError(f"unknown KAD precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        x = _rows(x, "reference embeddings")
        if x.shape[0] < 2:
            raise ValueError(f"KAD needs at least 2 reference embedding frames, got {x.shape[0]}")
        center = x.mean(dim=0)
        x = x - center
        mixed = precision == "mixed"
        if bandwidth is not None:
            gamma = _gamma(float(bandwidth))
            return cls(x, float(bandwidth), gamma, within_kernel_sum(x, gamma, mixed), center, precision)
        d2 = _upper_sq_dists(x, mixed)
        h = float(np.sqrt(_lower_median(d2)))
        gamma = _gamma(h)
        return cls(x, h, gamma, 2.0 * float(np.exp(-gamma * d2).sum()), center, precision)


@dataclass(frozen=True)
class KadShard:
    """A generated shard: its rows [n, D] (float64), Σ_{i,j} k(x_i, y_j) against the reference and
    Σ_{i≠j} k(y_i, y_j) within the shard. Shards of the same reference merge exactly."""

    rows: torch.Tensor
    cross: float
    within: float

    @property
    def n(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def of(cls, y: np.ndarray | torch.Tensor, reference: KadReference) -> KadShard:
        """The sums of generated rows ``y`` [n, D] against ``reference``."""
        y = _rows(y, "generated embeddings")
        if y.shape[1] != reference.rows.shape[1]:
            raise ValueError(f"generated embeddings are {y.shape[1]}-d, reference {reference.rows.shape[1]}-d")
        y = y - reference.center
        g, mixed = reference.gamma, reference.mixed
        return cls(y, kernel_sum(reference.rows, y, g, mixed), within_kernel_sum(y, g, mixed))

    def merge(self, other: KadShard, reference: KadReference) -> KadShard:
        """Both shards' sums: the within-sum gains 2 Σ k(self_i, other_j), the cross-shard pairs."""
        between = kernel_sum(self.rows, other.rows, reference.gamma, reference.mixed) if self.n and other.n else 0.0
        return KadShard(torch.cat([self.rows, other.rows]), self.cross + other.cross,
                        self.within + other.within + 2.0 * between)

    def distance(self, reference: KadReference) -> float:
        """KAD(reference, this shard's rows); needs n ≥ 2."""
        return _kad(reference.within, reference.n, self.within, self.n, self.cross)


def _kad(xx: float, m: int, yy: float, n: float, xy: float) -> float:
    if n < 2:
        return float("nan")
    return KAD_SCALE * (xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n))


def kernel_audio_distance(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    bandwidth: float | None = None,
    precision: str = "float64",
) -> float:
    """KAD between reference embeddings ``x`` [m, D] (m ≥ 2) and generated embeddings ``y``
    [n, D] (n ≥ 2); ``bandwidth`` None: the median pairwise distance within ``x``; ``precision``
    ``"float64"`` (default) or ``"mixed"`` (float32 Gram products, see the module docstring).

    >>> rng = np.random.default_rng(0)
    >>> round(kernel_audio_distance(rng.normal(size=(200, 4)), rng.normal(0.5, 1.0, size=(200, 4))), 3)
    7.242
    """
    reference = KadReference.of(x, bandwidth=bandwidth, precision=precision)
    shard = KadShard.of(y, reference)
    if shard.n < 2:
        raise ValueError(f"KAD needs at least 2 generated embedding frames, got {shard.n}")
    return shard.distance(reference)


class _KadSubsets:
    """KAD of the frames of a subset of clips against a fixed reference: per-clip cross sums [C]
    and the clip-by-clip kernel sums [C, C] (within-clip self pairs excluded from the diagonal)."""

    def __init__(self, clips: Sequence[np.ndarray], reference: KadReference) -> None:
        if len(clips) == 0:
            raise ValueError("a KAD interval needs at least one clip")
        frames = [_rows(c, "clip frames") - reference.center for c in clips]
        y = torch.cat(frames)
        counts = [f.shape[0] for f in frames]
        owner = torch.repeat_interleave(torch.arange(len(frames)), torch.tensor(counts))
        g = reference.gamma
        x_sq, y_sq = (reference.rows ** 2).sum(dim=1), (y * y).sum(dim=1)
        xg, yg = _gram_rows(reference.rows, reference.mixed), _gram_rows(y, reference.mixed)
        cross = torch.zeros(len(frames), dtype=torch.float64)
        pair = torch.zeros(len(frames), len(frames), dtype=torch.float64)
        with torch.inference_mode():
            for i0 in range(0, y.shape[0], BLOCK_ROWS):
                i1 = min(i0 + BLOCK_ROWS, y.shape[0])
                k_xy = _sq_dist(yg[i0:i1], xg, y_sq[i0:i1], x_sq, reference.mixed).mul_(-g).exp_()
                cross.index_add_(0, owner[i0:i1], k_xy.sum(dim=1))
                k_yy = _sq_dist(yg[i0:i1], yg, y_sq[i0:i1], y_sq, reference.mixed).mul_(-g).exp_()
                k_yy[torch.arange(i1 - i0), torch.arange(i0, i1)] = 0.0  # self pairs
                by_clip = torch.zeros(i1 - i0, len(frames), dtype=torch.float64).index_add_(1, owner, k_yy)
                pair.index_add_(0, owner[i0:i1], by_clip)  # frames summed into clips: [block, C] then [C, C]
        self.cross, self.pair = cross.numpy(), ((pair + pair.T) / 2).numpy()
        self.counts = np.asarray(counts)
        self.reference = reference
        self.n_clips = len(frames)

    def kad(self, clip_idx: np.ndarray | None = None) -> float:
        idx = np.arange(self.n_clips) if clip_idx is None else clip_idx
        r = self.reference
        return _kad(r.within, r.n, float(self.pair[np.ix_(idx, idx)].sum()), float(self.counts[idx].sum()),
                    float(self.cross[idx].sum()))


def kad_interval(
    clips: Sequence[np.ndarray],
    reference: KadReference,
    *,
    resamples: int = FD_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> FdInterval:
    """Interval of KAD(reference, generated ``clips`` (each [n_i, D] frames)) by FD's bias-corrected
    half-sampling over clips (:func:`~t2mbench.metrics.frechet.subsample_interval`), the reference
    held fixed."""
    subsets = _KadSubsets(clips, reference)
    return subsample_interval(subsets.kad, subsets.n_clips, resamples=resamples, confidence=confidence, seed=seed)


class KadMetric(EmbeddingMetric):
    """KAD between the embedding frames of the reference and generated sets (``kad_<embedder>``).

    Frames of all clips are stacked (longer clips weigh more, as kadtk's concatenation does); the
    frames of both sets are kept (float32) because the kernel sums need every pair. ``bandwidth``
    None: the median pairwise distance within the reference frames. The interval is
    :func:`kad_interval` (``ci_resamples=0`` turns it off).

    ``update(frames [F, D], side="generated" | "reference", clip_id=...)`` for arrays.
    """

    higher_is_better = False
    protocol_version = "kadtk-kad-1"

    def __init__(
        self,
        *,
        bandwidth: float | None = None,
        precision: str = "float64",
        ci_resamples: int = FD_RESAMPLES,
        confidence: float = CONFIDENCE,
        seed: int = 0,
        **protocol: Any,
    ) -> None:
        self.bandwidth = None if bandwidth is None else number("bandwidth", bandwidth, above=0.0)
        self.precision = one_of("precision", precision, PRECISIONS)
        self.ci_resamples, self.confidence, self.seed = bootstrap(ci_resamples, confidence, seed)
        self.protocol = EmbeddingProtocol(**protocol)
        self.reset()

    def reset(self) -> None:
        self.clip_frames: dict[str, np.ndarray] = {}
        self.reference_frames: list[np.ndarray] = []

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "bandwidth": self.bandwidth or "median pairwise distance of the reference",
                "kernel": "gaussian exp(-||a-b||^2 / (2 h^2 + 1e-8))", "scale": KAD_SCALE,
                "estimator": "unbiased MMD^2 (diagonals removed)", "precision": self.precision,
                "ci_resamples": self.ci_resamples,
                "confidence": self.confidence, "ci_method": FD_CI_METHOD, "seed": self.seed}

    def update(self, frames: np.ndarray, *, side: str = "generated", clip_id: str | None = None) -> None:
        """Add one clip's frames ``[F, D]`` to the ``generated`` or ``reference`` set."""
        x = np.asarray(frames, dtype=np.float32)
        if side == "generated":
            cid = clip_id if clip_id is not None else str(len(self.clip_frames))
            if cid in self.clip_frames:
                raise MetricError(f"{self.name}: clip id {cid!r} was added twice")
            self.clip_frames[cid] = x
        elif side == "reference":
            self.reference_frames.append(x)
        else:
            raise ValueError(f"side must be 'generated' or 'reference', got {side!r}")

    def feed(self, item: ScoringItem) -> None:
        if item.generated is not None:
            self.update(frames_of(self.protocol.embedding(item.generated)), side="generated", clip_id=item.clip_id)
        if item.reference is not None:
            self.update(frames_of(self.protocol.embedding(item.reference)), side="reference")

    def compute(self) -> MetricResult:
        ref_rows = np.concatenate(self.reference_frames) if self.reference_frames else np.zeros((0, 0))
        gen_rows = sum(len(f) for f in self.clip_frames.values())
        for side, n in (("reference", len(ref_rows)), ("generated", gen_rows)):
            if n < 2:
                raise MetricError(f"{self.name}: the {side} set gave {n} embedding frames; KAD needs at least 2")
        if ref_rows.shape[1] != next(iter(self.clip_frames.values())).shape[1]:
            raise MetricError(f"{self.name}: generated and reference frames differ in dimension")
        reference = KadReference.of(ref_rows, bandwidth=self.bandwidth, precision=self.precision)
        clips = list(self.clip_frames.values())
        extra = {"bandwidth": reference.bandwidth, "generated_frames": float(gen_rows),
                 "reference_frames": float(reference.n)}
        if not self.ci_resamples:
            value = KadShard.of(np.concatenate(clips), reference).distance(reference)
            return MetricResult(self.name, value, n_clips=len(clips), extra=extra)
        iv = kad_interval(clips, reference, resamples=self.ci_resamples, confidence=self.confidence, seed=self.seed)
        result = MetricResult(self.name, iv.estimate, iv.low, iv.high, n_clips=len(clips), extra=extra)
        result.extra.update({"kad_bias_corrected": iv.corrected, "kad_ci_se": iv.se})
        if iv.m < 2:
            result.warnings.append(f"{len(clips)} clips are too few for a KAD interval (needs >= 4)")
        return result
