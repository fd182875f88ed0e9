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

from t2mbench.bench.gates.latency import _reference, _work
from t2mbench.metrics.frechet import embedding_stats, fd_interval


def test_reference_workload(benchmark):
    benchmark.pedantic(_reference(), rounds=20, warmup_rounds=2)


def test_sort_workload(benchmark):
    benchmark.pedantic(_work(60), rounds=20, warmup_rounds=2)


def test_fd_interval_32_clips_128d(benchmark):
    rng = np.random.default_rng(0)
    clips = [rng.normal(size=(9, 128)) for _ in range(32)]
    reference = embedding_stats(rng.normal(size=(1000, 128)))
    iv = benchmark.pedantic(fd_interval, args=(clips, reference), kwargs={"resamples": 20}, rounds=5,
                            warmup_rounds=1)
    assert iv.low <= iv.estimate <= iv.high
