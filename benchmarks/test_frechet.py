"""Fréchet distance between two sets of 10,000 x 2048-d float32 embeddings, statistics included.

    pytest benchmarks/test_frechet.py --benchmark-enable --benchmark-only -s
    T2MBENCH_UPSTREAM_PYTHON=/work/fixenv/t291/bin/python pytest benchmarks/test_frechet.py --benchmark-enable \\
        --benchmark-only      # also fadtk 1.1.0 on the same saved embeddings, in a subprocess

Ours: :func:`t2mbench.metrics.frechet.frechet_distance` (blocked float64 ``dsyrk`` statistics of the
float32 rows, pivoted Cholesky factors, the eigenvalues of W Wᵀ by the two-stage reduction). The
reference in the same run, interleaved round by round: the plain formula, ``np.cov`` of each set and
``scipy.linalg.sqrtm`` of the product (stable-audio-metrics' ``calculate_frechet_distance``, with float64
means). Medians of the rounds; requirement: ours at least 5x faster, agreeing to 1e-9 relative. fadtk
computes both sqrtm and an eigendecomposition of the product, so it is slower than either; its time is
recorded in ``extra_info``. The machine is shared: quote the ratio with ``uptime``'s load.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import sqrtm

from t2mbench.metrics.frechet import embedding_stats, frechet_distance, frechet_distance_from_stats

N, D = 10_000, 2048
UPSTREAM_SCRIPT = Path(__file__).parent / "upstream" / "fadtk_fd.py"


@pytest.fixture(scope="module")
def embeddings():
    rng = np.random.default_rng(0)
    mix = (rng.standard_normal((D, D)) / np.sqrt(D)).astype(np.float32)
    a = rng.standard_normal((N, D), dtype=np.float32) @ mix
    b = rng.standard_normal((N, D), dtype=np.float32) @ mix + np.float32(0.05)
    return a, b


def fd(a: np.ndarray, b: np.ndarray, method: str) -> float:
    return frechet_distance_from_stats(embedding_stats(a), embedding_stats(b), method=method)


def plain_reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """np.cov + scipy.linalg.sqrtm of the product (SAM's formula; float64 means)."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(axis=0, dtype=np.float64) - b.mean(axis=0, dtype=np.float64)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(sqrtm(s1 @ s2)).real)


def test_fd_10000x2048_vs_plain_np_cov_sqrtm(benchmark, embeddings):
    a, b = embeddings
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    values: dict[str, float] = {}

    def one_round():  # ours then the reference, so both see the same machine load
        for name, fn in (("ours", lambda: frechet_distance(a, b)), ("reference", lambda: plain_reference_fd(a, b))):
            start = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - start)

    benchmark.pedantic(one_round, rounds=3, warmup_rounds=0)
    ours_s, reference_s = float(np.median(times["ours"])), float(np.median(times["reference"]))
    speedup = reference_s / ours_s
    relative = abs(values["ours"] - values["reference"]) / abs(values["reference"])
    benchmark.extra_info.update(
        ours_s=times["ours"], reference_s=times["reference"], ours_median_s=ours_s, reference_median_s=reference_s,
        speedup=speedup, fd=values["ours"], relative_difference=relative, load=os.getloadavg(),
    )  # fmt: skip
    print(f"\nFD 10k x 2048: ours {ours_s:.2f} s, np.cov + sqrtm {reference_s:.2f} s (medians of 3, interleaved), "
          f"{speedup:.2f}x, relative difference {relative:.1e}, load {os.getloadavg()}")
    assert relative <= 1e-9
    assert speedup >= 5.0, f"only {speedup:.2f}x faster than np.cov + sqrtm"


def test_fd_10000x2048_vs_fadtk(benchmark, embeddings, tmp_path):
    python = os.environ.get("T2MBENCH_UPSTREAM_PYTHON")
    if not python:
        pytest.skip("T2MBENCH_UPSTREAM_PYTHON is not set: fadtk's side is skipped")
    a, b = embeddings
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    files = ["--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy")]
    proc = subprocess.run(
        [python, str(UPSTREAM_SCRIPT), *files, "--repeats", "2"],
        capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    upstream = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = benchmark.pedantic(lambda: fd(a, b, "cholesky"), rounds=2, warmup_rounds=1)
    speedup = upstream["best_s"] / benchmark.stats.stats.min
    benchmark.extra_info.update(
        fadtk_best_s=upstream["best_s"], fadtk_stats_s=upstream["stats_s"], fadtk_fd=upstream["fd"], speedup=speedup,
        fadtk_versions={k: upstream[k] for k in ("numpy", "scipy", "fadtk")},
    )  # fmt: skip
    # fadtk's float32 means move FD by ~1e-7 relative
    assert ours == pytest.approx(upstream["fd"], rel=1e-6)
