"""Fréchet distance: parity with stable-audio-metrics (scipy 1.10 sqrtm) and fadtk 1.1.0, agreement
of the three trace paths, and accuracy against a 40-digit mpmath reference on hard cases."""

from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from scipy.linalg import sqrtm

from t2mbench.metrics import frechet_distance as exported
from t2mbench.metrics.frechet import (
    METHODS,
    GaussianStats,
    StatsAccumulator,
    embedding_stats,
    fad_inf,
    frechet_distance,
    frechet_distance_from_stats,
    per_song_fd,
    trace_sqrt_product,
)

FIX = Path(__file__).parents[1] / "fixtures" / "metrics"


@pytest.fixture(scope="module")
def sam():
    return np.load(FIX / "frechet.npz")


@pytest.fixture(scope="module")
def fadtk():
    return np.load(FIX / "frechet_fadtk.npz")


def _float32_mean_stats(x: np.ndarray) -> GaussianStats:
    """SAM's / fadtk's statistics: np.mean of float32 rows in float32, np.cov in float64."""
    return GaussianStats(np.mean(x, axis=0).astype(np.float64), np.cov(x, rowvar=False), len(x))


@pytest.mark.parametrize("case", ["well", "lowrank", "neardup"])
@pytest.mark.parametrize("method", METHODS)
def test_matches_stable_audio_metrics_on_its_statistics(sam, case, method):
    gen, ref = sam[f"{case}_gen"], sam[f"{case}_ref"]
    np.testing.assert_array_equal(np.mean(gen, axis=0), sam[f"{case}_sam_mu_gen"])  # same float32 mean
    fd = frechet_distance_from_stats(_float32_mean_stats(gen), _float32_mean_stats(ref), method=method)
    expected = float(sam[f"{case}_sam_fd"])
    # SAM subtracts and squares the float32 means in float32 (‖Δμ‖² to ~1e-7 relative); on the
    # near-duplicate pair (FD ~4e-10, a difference of traces ~16) that and scipy 1.10's sqrtm
    # leave ~1e-3 relative (the mpmath test below shows which side is right)
    tol = {"well": 1e-7, "lowrank": 1e-7, "neardup": 2e-3}[case]
    assert fd == pytest.approx(expected, rel=tol)


def test_float64_mean_moves_fd_by_less_than_1e_6_on_well_conditioned_sets(sam):
    assert frechet_distance(sam["well_gen"], sam["well_ref"]) == pytest.approx(float(sam["well_sam_fd"]), rel=1e-6)


@pytest.mark.parametrize("case", ["well", "lowrank"])
def test_matches_fadtk(sam, fadtk, case):
    fd = frechet_distance_from_stats(_float32_mean_stats(sam[f"{case}_gen"]), _float32_mean_stats(sam[f"{case}_ref"]))
    assert fd == pytest.approx(float(fadtk[f"{case}_fadtk_fd"]), rel=1e-7)


def test_fad_inf_matches_fadtk_score_inf(sam, fadtk):
    result = fad_inf(sam["inf_eval"], embedding_stats(sam["inf_base"]), seed=0)
    points = np.array(result.points)
    np.testing.assert_array_equal(points[:, 0], fadtk["inf_points"][:, 0])  # same n and same draws
    np.testing.assert_allclose(points[:, 1], fadtk["inf_points"][:, 1], rtol=2e-6)
    assert result.score == pytest.approx(float(fadtk["inf_score"]), rel=2e-6)
    assert result.slope == pytest.approx(float(fadtk["inf_slope"]), rel=2e-5)
    assert result.r2 == pytest.approx(float(fadtk["inf_r2"]), rel=2e-5)


def test_fad_inf_needs_min_n_frames():
    with pytest.raises(ValueError, match="FAD-inf needs at least min_n=500 embedding frames, got 40"):
        fad_inf(np.zeros((40, 3)), GaussianStats(np.zeros(3), np.eye(3), 10))


def test_per_song_fd_matches_fadtk(sam, fadtk):
    clips = dict(enumerate(np.split(sam["inf_eval"], 35)))
    got = per_song_fd(clips, embedding_stats(sam["inf_base"]))
    np.testing.assert_allclose([got[i] for i in range(35)], fadtk["per_song"], rtol=1e-6)


def test_exported_entry_point_is_the_functional_twin():
    assert exported is frechet_distance


def _random_covariance(rng, d, n):
    x = rng.standard_normal((n, d)) @ (rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d))
    return np.cov(x, rowvar=False)


@pytest.mark.parametrize("d", [8, 64, 160])
def test_all_paths_agree_with_scipy_sqrtm_on_well_conditioned_covariances(d):
    rng = np.random.default_rng(d)
    s1, s2 = _random_covariance(rng, d, 4 * d), _random_covariance(rng, d, 4 * d)
    reference = float(np.trace(sqrtm(s1 @ s2)).real)
    for method in METHODS:
        assert trace_sqrt_product(s1, s2, method=method) == pytest.approx(reference, rel=1e-6)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    fds = [frechet_distance_from_stats(GaussianStats(mu1, s1, 1), GaussianStats(mu2, s2, 1), method=m) for m in METHODS]
    np.testing.assert_allclose(fds, fds[0], rtol=1e-6)


def _mp_fd(a: np.ndarray, b: np.ndarray) -> float:
    """FD of the Gaussians fitted to ``a`` and ``b`` (taken exactly) in 40-digit arithmetic:
    tr (Σa Σb)^½ = Σ √λ(Σa^½ Σb Σa^½) with symmetric eigendecompositions."""
    mp.mp.dps = 40

    def stats(x):
        n, d = x.shape
        X = [[mp.mpf(float(v)) for v in row] for row in x]
        mu = [mp.fsum(X[k][j] for k in range(n)) / n for j in range(d)]
        C = mp.matrix(d, d)
        for i in range(d):
            for j in range(i, d):
                C[i, j] = C[j, i] = mp.fsum((X[k][i] - mu[i]) * (X[k][j] - mu[j]) for k in range(n)) / (n - 1)
        return mu, C

    (mu1, c1), (mu2, c2) = stats(a), stats(b)
    d = c1.rows
    w, u = mp.eigsy(c1)
    root = u * mp.diag([mp.sqrt(max(x, 0)) for x in w]) * u.T
    m = root * c2 * root
    tr = mp.fsum(mp.sqrt(max(x, 0)) for x in mp.eigsy((m + m.T) / 2, eigvals_only=True))
    dm = mp.fsum((mu1[i] - mu2[i]) ** 2 for i in range(d))
    return float(dm + mp.fsum(c1[i, i] for i in range(d)) + mp.fsum(c2[i, i] for i in range(d)) - 2 * tr)


def _hard_cases():
    rng = np.random.default_rng(3)
    d = 12
    base = rng.standard_normal((10, d))
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    scale = np.logspace(0, -6, d)  # eigenvalues from 1 to 1e-12
    return {
        "fewer_frames_than_dims": (rng.standard_normal((8, d)), rng.standard_normal((9, d)) + 0.5),
        "near_duplicate": (base, base + 1e-4 * rng.standard_normal(base.shape)),
        "identical_rank_deficient": (base, base.copy()),
        "ill_conditioned": tuple((rng.standard_normal((200, d)) * scale) @ q.T for _ in range(2)),
    }


@pytest.mark.parametrize("case", list(_hard_cases()))
def test_cholesky_path_is_exact_on_rank_deficient_and_ill_conditioned_sets(case):
    """The default is right to ~1e-14 of the traces on every hard case; sqrtm and eig (SAM, fadtk)
    carry √eps-sized errors at the (near-)zero eigenvalues of Σa·Σb (measured with scipy 1.17:
    2e-7 absolute on near-duplicates, i.e. > 100 % of an FD of 1.8e-7, and 5e-7 on fewer frames
    than dimensions)."""
    a, b = _hard_cases()[case]
    exact = _mp_fd(a, b)
    scale = np.trace(np.cov(a, rowvar=False)) + np.trace(np.cov(b, rowvar=False))
    errors = {m: abs(frechet_distance(a, b, method=m) - exact) / scale for m in METHODS}
    assert errors["cholesky"] < 1e-14
    if case in ("fewer_frames_than_dims", "near_duplicate", "identical_rank_deficient"):
        assert min(errors["sqrtm"], errors["eig"]) > 100 * max(errors["cholesky"], 1e-17)


def test_streaming_statistics_equal_numpy_on_the_whole_set():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((257, 6)) * 3 + 5
    acc = StatsAccumulator()
    for block in np.array_split(x, [1, 2, 50, 51, 200]):
        acc.update(block)
    s = acc.stats()
    np.testing.assert_allclose(s.mu, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(s.sigma, np.cov(x, rowvar=False), rtol=1e-12, atol=1e-13)
    assert s.n == 257


def test_bad_inputs_raise_with_the_reason():
    with pytest.raises(ValueError, match="a covariance needs at least 2 embedding frames, got 1"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N, D\]"):
        frechet_distance(np.zeros(3), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="embeddings contain NaN or Inf"):
        frechet_distance(np.full((4, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="statistics have different dimensions: 3 and 4"):
        frechet_distance(np.random.default_rng(0).normal(size=(5, 3)), np.random.default_rng(1).normal(size=(5, 4)))
    with pytest.raises(ValueError, match="unknown FD method 'svd'; use one of cholesky, sqrtm, eig"):
        trace_sqrt_product(np.eye(2), np.eye(2), method="svd")
    acc = StatsAccumulator()
    acc.update(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="embeddings have dimension 3, earlier ones 2"):
        acc.update(np.zeros((3, 3)))


def _embedding_sets(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 embedding sets [n, d] through one random mixing matrix (cond ~ d), the second
    shifted by 0.05: the shape of the 10k x 2048 benchmark, smaller."""
    rng = np.random.default_rng(seed)
    mix = (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)
    a = rng.standard_normal((n, d), dtype=np.float32) @ mix
    b = rng.standard_normal((n, d), dtype=np.float32) @ mix + np.float32(0.05)
    return a, b


def _plain_reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """The plain formula: np.cov, float64 means, scipy.linalg.sqrtm of the product."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(axis=0, dtype=np.float64) - b.mean(axis=0, dtype=np.float64)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(sqrtm(s1 @ s2)).real)


def test_blocked_statistics_of_float32_rows_equal_np_cov():
    a, _ = _embedding_sets(1300, 40, 5)  # 1300 rows: three dsyrk blocks of 512
    s = embedding_stats(a)
    np.testing.assert_allclose(s.sigma, np.cov(a, rowvar=False), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(s.mu, a.astype(np.float64).mean(axis=0), rtol=1e-14, atol=1e-16)
    acc = StatsAccumulator()
    for block in np.array_split(a, 97):  # clip-sized updates, buffered into blocks
        acc.update(block)
    np.testing.assert_allclose(acc.stats().sigma, s.sigma, rtol=1e-12, atol=1e-15)


def test_eigenvalue_route_matches_scipy_sqrtm_and_the_exact_svd_at_rank_300(monkeypatch):
    a, b = _embedding_sets(1500, 300, 7)
    exact = frechet_distance(a, b)  # the route the default takes here
    from t2mbench.metrics import frechet as module

    sa, sb = embedding_stats(a), embedding_stats(b)
    w = module.psd_factor(sa.sigma).T @ module.psd_factor(sb.sigma)
    fast, bound = module.trace_sqrt_gram(w)
    assert 2 * bound <= module.FAST_RTOL * exact  # so the default took the eigenvalue route ...
    svd = module._nuclear_norm(w)
    assert fast == pytest.approx(svd, rel=1e-13)  # ... which equals the exact singular values
    assert abs(fast - svd) <= bound
    assert exact == pytest.approx(_plain_reference_fd(a, b), rel=1e-9)
    monkeypatch.setattr(module, "_nuclear_norm", lambda m: pytest.fail("the exact SVD path was taken"))
    assert frechet_distance_from_stats(sa, sb) == exact


def test_eigenvalue_route_falls_back_to_the_exact_svd_on_near_duplicate_sets():
    """Near-duplicate 300-d sets: FD ~1e-6 of the traces, so the eigenvalue route's error bound is
    not below 1e-9 of FD and the singular values of W are taken (exact to ~1e-15 of the traces)."""
    a, _ = _embedding_sets(1500, 300, 8)
    b = a + np.float32(1e-3) * np.random.default_rng(9).standard_normal(a.shape, dtype=np.float32)
    from t2mbench.metrics import frechet as module

    sa, sb = embedding_stats(a), embedding_stats(b)
    w = module.psd_factor(sa.sigma).T @ module.psd_factor(sb.sigma)
    fd_svd = float(sa.mu @ sa.mu - 2 * sa.mu @ sb.mu + sb.mu @ sb.mu + np.trace(sa.sigma) + np.trace(sb.sigma)
                   - 2 * module._nuclear_norm(w))
    _, bound = module.trace_sqrt_gram(w)
    assert 2 * bound > module.FAST_RTOL * fd_svd
    assert frechet_distance_from_stats(sa, sb) == pytest.approx(fd_svd, rel=1e-12)


def test_eigvalsh_2stage_equals_numpy_eigvalsh():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((50, 50))
    m = g @ g.T
    from t2mbench.metrics.frechet import eigvalsh_2stage

    np.testing.assert_allclose(eigvalsh_2stage(m), np.linalg.eigvalsh(m), rtol=1e-12, atol=1e-12)


def test_accumulator_counts_buffered_rows():
    acc = StatsAccumulator()
    acc.update(np.ones((3, 4), np.float32))
    assert acc.n == 3  # still in the buffer, below one dsyrk block
