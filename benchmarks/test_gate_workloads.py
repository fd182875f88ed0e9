"""Small workloads with a stored pytest-benchmark baseline (``tox -e bench`` compares against it).

    pytest benchmarks/test_gate_workloads.py --benchmark-enable --benchmark-only \\
        --benchmark-storage=file://benchmarks/baseline --benchmark-save=gate    # refresh the baseline

The stored run lives in ``benchmarks/baseline/<machine>/0001_gate.json``. pytest-benchmark's
``--benchmark-compare-fail=median:25%`` is a fixed threshold without statistics and compares
across machines only as well as the machines agree; :mod:`t2mbench.bench.gates.latency` is the
statistical gate (interleaved ratios to a reference workload, Mann–Whitney U plus a factor).
"""

from __future__ import annotations

import numpy as np

from t2mbench.bench.gates.latency import _fft_reference, _work
from t2mbench.metrics.frechet import embedding_stats, fd_interval


def test_reference_workload_fft(benchmark):
    benchmark.pedantic(_fft_reference(), rounds=20, warmup_rounds=2)


def test_sort_workload(benchmark):
    benchmark.pedantic(_work(200), rounds=20, warmup_rounds=2)


def test_fd_interval_64_clips_256d(benchmark):
    rng = np.random.default_rng(0)
    clips = [rng.normal(size=(9, 256)) for _ in range(64)]
    reference = embedding_stats(rng.normal(size=(1000, 256)))
    iv = benchmark.pedantic(fd_interval, args=(clips, reference), kwargs={"resamples": 20}, rounds=5,
                            warmup_rounds=1)
    assert iv.low <= iv.estimate <= iv.high
