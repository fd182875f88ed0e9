"""MAD (the ``mad-metric`` package): −ln MAUVE between per-clip embeddings, MAUVE computed exactly as
``mauve-text`` 0.4 ``compute_mauve`` does with its defaults, in numpy (no faiss, no sklearn).

mad-metric 0.0.6 ``compute_mad`` = ``-log(mauve.compute_mauve(p_features=eval, q_features=ref).mauve)``
on one vector per clip (MERT-v1-330M layer 24, max over time, in mad-metric; the registered ``mad`` metric:
``embedder="mert_330m"``, :mod:`t2mbench.metrics.embedders.mert_330m`). Steps
(:func:`mauve_score`), with p the generated and q the reference set:

1. Buckets k = max(2, round(min(|p|, |q|) / 10)) (Python's round: halves to even).
2. Rows [q; p] (reference first) L2-normalised; PCA (centred SVD) keeping the fewest leading
   components whose explained-variance ratios sum to ≥ 0.9; projected rows cast to float32. (PCA's
   per-component signs, which differ between SVD routines, do not matter: flipping an axis
   preserves every distance, and the k-means below starts from data rows.)
3. faiss ``Kmeans(d, k, niter=500, nredo=5, seed=seed + 2, update_index=True)`` (faiss
   ``Clustering::train``, reproduced in :func:`faiss_kmeans`): more than 256·k rows are first
   subsampled to the first 256·k of ``rand_perm(n, seed)``; each redo r starts from the rows
   ``rand_perm(n, seed + 1 + 15486557·r)[:k]``; every iteration assigns rows to the nearest
   centroid (squared L2, float32), records the objective Σ distance, recomputes centroids as
   means, and splits a random large cluster into every empty one (faiss ``split_clusters``:
   ``RandomGenerator(1234)`` afresh each iteration, perturbation (1 ± 1/1024) on alternate
   coordinates); the redo whose last objective is lowest wins. ``rand_perm`` is a Fisher-Yates
   shuffle driven by ``std::mt19937`` (numpy's ``MT19937`` with legacy seeding produces the same
   stream). All 500 iterations run in faiss; here the loop stops at a fixed point (same
   assignment and no split), after which faiss's iterations repeat the same state.
4. Labels of all rows against the winning centroids; histograms of q's and p's labels.
5. Divergence curve at mixture weights linspace(1e-6, 1 − 1e-6, 25): points
   (exp(−5 KL(q‖r)), exp(−5 KL(p‖r))) with r = w p + (1 − w) q, plus (0, 1) and (1, 0) (from the
   infinite end points); MAUVE = the mean of the trapezoid areas under the curve sorted by x and,
   swapped, by y (``sklearn.metrics.auc``).

Parity (``tests/metrics/test_mauve.py``) against mad-metric run on the stored embeddings of
``tests/fixtures/mad/`` (``tools/fixtures/make_mad.py``): the same histograms and MAD to 1e-12,
in four cases that cover the subsampling and the empty-cluster split. The distances here are
computed from float32 rows in float64 and rounded to float32, faiss's in float32 BLAS; the
assignments can only differ for a row equidistant from two centroids within float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from t2mbench.metrics.base import MetricError, MetricResult, ScoringItem
from t2mbench.metrics.bootstrap import CONFIDENCE
from t2mbench.metrics.embedding_metric import EmbeddingMetric, EmbeddingProtocol
from t2mbench.metrics.frechet import FD_CI_METHOD, frames_of, subsample_interval
from t2mbench.metrics.setting_checks import bootstrap, integer, number, one_of

EXPLAINED_VARIANCE = 0.9
NUM_REDO = 5
MAX_ITER = 500
CURVE_SIZE = 25
SCALING = 5.0
SEED = 25
MAX_POINTS_PER_CENTROID = 256  # faiss ClusteringParameters default
SPLIT_EPS = np.float32(1 / 1024)  # faiss split_clusters perturbation
REDO_STRIDE = 15486557  # faiss Clustering::train seed step per redo
AGGREGATIONS = ("max", "mean")


def _mt19937(seed: int) -> np.random.MT19937:
    """``std::mt19937((unsigned int) seed)``: numpy's MT19937 with the legacy (init_genrand) seeding."""
    bits = np.random.MT19937(0)
    bits._legacy_seeding(int(seed) & 0xFFFFFFFF)
    return bits


def rand_perm(n: int, seed: int) -> np.ndarray:
    """faiss ``rand_perm``: for i < n − 1 swap perm[i] with perm[i + mt() % (n − i)]."""
    bits = _mt19937(seed)
    perm = np.arange(n)
    draws = bits.random_raw(max(n - 1, 0))
    for i in range(n - 1):
        j = i + int(draws[i]) % (n - i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _nearest(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and float32 squared distance to the nearest centroid for each row (first on ties)."""
    x64, c64 = x.astype(np.float64), c.astype(np.float64)
    d2 = (x64 * x64).sum(1)[:, None] + (c64 * c64).sum(1)[None, :] - 2.0 * x64 @ c64.T
    d2 = np.maximum(d2, 0.0).astype(np.float32)
    idx = np.argmin(d2, axis=1)
    return idx, d2[np.arange(len(x)), idx]


def _split_clusters(counts: np.ndarray, centroids: np.ndarray, n: int) -> int:
    """faiss ``split_clusters`` in place on float32 ``counts`` [k] and ``centroids`` [k, d]."""
    k = len(counts)
    bits = _mt19937(1234)
    top = np.float32(4294967295.0)  # float(mt.max()) in faiss
    splits = 0
    for ci in range(k):
        if counts[ci] != 0:
            continue
        cj = 0
        while True:
            p = np.float32(counts[cj] - np.float32(1.0)) / np.float32(n - k)
            r = np.float32(bits.random_raw()) / top
            if r < p:
                break
            cj = (cj + 1) % k
        centroids[ci] = centroids[cj]
        up, down = np.float32(1) + SPLIT_EPS, np.float32(1) - SPLIT_EPS
        centroids[ci, 0::2] *= up
        centroids[cj, 0::2] *= down
        centroids[ci, 1::2] *= down
        centroids[cj, 1::2] *= up
        counts[ci] = counts[cj] / np.float32(2)
        counts[cj] -= counts[ci]
        splits += 1
    return splits


def faiss_kmeans(x: np.ndarray, k: int, *, niter: int = MAX_ITER, nredo: int = NUM_REDO, seed: int = SEED + 2
                 ) -> np.ndarray:
    """Centroids [k, d] (float32) of faiss ``Clustering::train`` on rows ``x`` [n, d] (float32, n ≥ k)
    with default parameters (random init, L2, 256 points per centroid at most)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    if n < k:
        raise ValueError(f"k-means needs at least k={k} rows, got {n}")
    if n > k * MAX_POINTS_PER_CENTROID:
        x = x[rand_perm(n, seed)[: k * MAX_POINTS_PER_CENTROID]]
        n = len(x)
    if n == k:
        return x.copy()
    best, best_obj = None, np.float32(np.inf)
    for redo in range(nredo):
        centroids = x[rand_perm(n, seed + 1 + redo * REDO_STRIDE)[:k]].copy()
        previous = None
        obj = np.float32(0)
        for _ in range(niter):
            assign, dist = _nearest(x, centroids)
            obj = np.float32(dist.astype(np.float64).sum())
            counts = np.bincount(assign, minlength=k).astype(np.float32)
            sums = np.zeros((k, x.shape[1]), dtype=np.float64)
            np.add.at(sums, assign, x)
            filled = counts > 0
            centroids = np.zeros_like(centroids)
            centroids[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
            splits = _split_clusters(counts, centroids, n)
            if splits == 0 and previous is not None and np.array_equal(assign, previous):
                break  # a fixed point: faiss's remaining iterations repeat this state
            previous = assign
        if obj < best_obj:
            best, best_obj = centroids, obj
    return best


def _pca_reduce(data: np.ndarray, explained_variance: float) -> np.ndarray:
    centred = data - data.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    ratio = s**2 / np.sum(s**2)
    keep = int(np.argmax(np.cumsum(ratio) >= explained_variance)) + 1
    return centred @ vt[:keep].T


def _kl(a: np.ndarray, b: np.ndarray) -> float:
    if np.any((a != 0) & (b == 0)):
        return float("inf")
    idx = (a != 0) & (b != 0)
    return float(np.sum(a[idx] * np.log(a[idx] / b[idx])))


def _area(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


@dataclass(frozen=True)
class MauveResult:
    """MAUVE ∈ (0, 1] (1: same histograms), the histograms p (generated) and q (reference) [k], the
    divergence curve [curve_size + 2, 2], and the PCA dimension the clustering used."""

    mauve: float
    p_hist: np.ndarray
    q_hist: np.ndarray
    curve: np.ndarray
    num_buckets: int
    dim: int

    @property
    def mad(self) -> float:
        """mad-metric's score −ln MAUVE (≥ 0, lower is better)."""
        return float(-np.log(self.mauve))


def mauve_score(
    p: np.ndarray,
    q: np.ndarray,
    *,
    num_buckets: int | str = "auto",
    explained_variance: float = EXPLAINED_VARIANCE,
    num_redo: int = NUM_REDO,
    max_iter: int = MAX_ITER,
    curve_size: int = CURVE_SIZE,
    scaling: float = SCALING,
    seed: int = SEED,
) -> MauveResult:
    """MAUVE of generated per-clip embeddings ``p`` [n_p, D] against reference ``q`` [n_q, D]
    (mauve-text ``compute_mauve(p_features=p, q_features=q)``; see the module docstring)."""
    p, q = np.asarray(p, dtype=np.float32), np.asarray(q, dtype=np.float32)
    if p.ndim != 2 or q.ndim != 2 or p.shape[1] != q.shape[1] or not len(p) or not len(q):
        raise ValueError(f"MAUVE needs two non-empty [N, D] arrays of the same D, got {p.shape} and {q.shape}")
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("embeddings contain NaN or Inf")
    k = max(2, int(round(min(len(p), len(q)) / 10))) if num_buckets == "auto" else int(num_buckets)
    data = np.vstack([q, p]).astype(np.float64)
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    data = data / np.where(norms == 0, 1.0, norms)  # sklearn normalize leaves zero rows as they are
    reduced = _pca_reduce(data, explained_variance).astype(np.float32)
    centroids = faiss_kmeans(reduced, k, niter=max_iter, nredo=num_redo, seed=seed + 2)
    labels, _ = _nearest(reduced, centroids)
    q_hist = np.bincount(labels[: len(q)], minlength=k) / len(q)
    p_hist = np.bincount(labels[len(q):], minlength=k) / len(p)
    points = [[0.0, np.inf]]
    for w in np.linspace(1e-6, 1 - 1e-6, curve_size):
        r = w * p_hist + (1 - w) * q_hist
        points.append([_kl(q_hist, r), _kl(p_hist, r)])
    points.append([np.inf, 0.0])
    curve = np.exp(-scaling * np.asarray(points))
    x, y = curve.T
    i1, i2 = np.argsort(x), np.argsort(y)
    value = 0.5 * (_area(x[i1], y[i1]) + _area(y[i2], x[i2]))
    return MauveResult(value, p_hist, q_hist, curve, k, reduced.shape[1])


def music_audio_distance(generated: np.ndarray, reference: np.ndarray, **options: Any) -> float:
    """MAD = −ln MAUVE(generated [n_p, D], reference [n_q, D]) (mad-metric ``compute_mad`` on
    given embeddings); ``options`` as :func:`mauve_score`."""
    return mauve_score(generated, reference, **options).mad


class MadMetric(EmbeddingMetric):
    """MAD on one embedding per clip (``mad_<embedder>``): an embedder output with several frames is
    reduced over frames by ``aggregation`` (``"max"``: mad-metric's default over MERT time steps).
    Lower is better. mad-metric reports no interval; ``ci_resamples > 0`` (off by default: each
    replicate is a full MAUVE with its k-means) gives FD's half-sampling interval over the generated
    clips (:func:`~t2mbench.metrics.frechet.subsample_interval`, the reference fixed, the number of
    buckets fixed at the full set's)."""

    higher_is_better = False
    protocol_version = "mad-metric-0.0.6-mauve-0.4"

    def __init__(self, *, aggregation: str = "max", num_buckets: int | str = "auto",
                 explained_variance: float = EXPLAINED_VARIANCE, seed: int = SEED, ci_resamples: int = 0,
                 confidence: float = CONFIDENCE, **protocol: Any) -> None:
        self.ci_resamples, self.confidence, _ = bootstrap(ci_resamples, confidence, 0)
        self.aggregation = one_of("aggregation", aggregation, AGGREGATIONS)
        self.num_buckets = num_buckets if num_buckets == "auto" else integer("num_buckets", num_buckets, minimum=2)
        self.explained_variance = number("explained_variance", explained_variance, above=0.0, below=1.0)
        self.seed = integer("seed", seed, minimum=0)
        self.protocol = EmbeddingProtocol(**protocol)
        self.reset()

    def reset(self) -> None:
        self.generated: dict[str, np.ndarray] = {}
        self.reference: list[np.ndarray] = []

    def settings(self) -> dict[str, Any]:
        return {**self.protocol.settings(), "aggregation": self.aggregation, "num_buckets": self.num_buckets,
                "explained_variance": self.explained_variance, "seed": self.seed, "kmeans_redo": NUM_REDO,
                "ci_resamples": self.ci_resamples, "confidence": self.confidence, "ci_method": FD_CI_METHOD,
                "kmeans_iterations": MAX_ITER, "curve_size": CURVE_SIZE, "scaling": SCALING,
                "score": "-ln MAUVE (mauve-text compute_mauve defaults, faiss k-means reproduced)"}

    def _vector(self, frames: np.ndarray) -> np.ndarray:
        f = frames_of(frames)
        return (f.max(axis=0) if self.aggregation == "max" else f.mean(axis=0)).astype(np.float32)

    def update(self, embedding: np.ndarray, *, side: str = "generated", clip_id: str | None = None) -> None:
        """Add one clip's embedding (``[D]`` or frames ``[F, D]``) to the ``generated`` or ``reference`` set."""
        v = self._vector(np.asarray(embedding))
        if side == "generated":
            cid = clip_id if clip_id is not None else str(len(self.generated))
            if cid in self.generated:
                raise MetricError(f"{self.name}: clip id {cid!r} was added twice")
            self.generated[cid] = v
        elif side == "reference":
            self.reference.append(v)
        else:
            raise ValueError(f"side must be 'generated' or 'reference', got {side!r}")

    def feed(self, item: ScoringItem) -> None:
        if item.generated is not None:
            self.update(self.protocol.embedding(item.generated), side="generated", clip_id=item.clip_id)
        if item.reference is not None:
            self.update(self.protocol.embedding(item.reference), side="reference")

    def compute(self) -> MetricResult:
        n_gen, n_ref = len(self.generated), len(self.reference)
        k = max(2, int(round(min(n_gen, n_ref) / 10))) if self.num_buckets == "auto" else self.num_buckets
        if n_gen + n_ref < k or min(n_gen, n_ref) < 1:
            raise MetricError(f"{self.name}: MAUVE needs clips on both sides and at least {k} in all; "
                              f"got {n_gen} generated and {n_ref} reference")
        ids = sorted(self.generated)  # clip order fixes the k-means initialisation: sorted ids
        gen, ref = np.stack([self.generated[i] for i in ids]), np.stack(self.reference)
        res = mauve_score(gen, ref, num_buckets=self.num_buckets, explained_variance=self.explained_variance,
                          seed=self.seed)
        result = MetricResult(self.name, res.mad, n_clips=n_gen,
                              extra={"mauve": res.mauve, "num_buckets": float(res.num_buckets),
                                     "pca_dim": float(res.dim)})
        if self.ci_resamples:
            def stat(idx: np.ndarray | None) -> float:
                sub = gen if idx is None else gen[np.sort(idx)]
                return mauve_score(sub, ref, num_buckets=res.num_buckets, explained_variance=self.explained_variance,
                                   seed=self.seed).mad

            iv = subsample_interval(stat, n_gen, resamples=self.ci_resamples, confidence=self.confidence,
                                    seed=self.seed)
            result.ci_low, result.ci_high = iv.low, iv.high
        if min(n_gen, n_ref) < 50:
            result.warnings.append(f"MAD on {min(n_gen, n_ref)} clips ({res.num_buckets} buckets) is coarse: "
                                   "MAUVE quantises into n/10 clusters")
        return result


__all__ = ["MadMetric", "MauveResult", "faiss_kmeans", "mauve_score", "music_audio_distance", "rand_perm"]
