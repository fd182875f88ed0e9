"""Building the rendered-score corpus end to end, as a user runs it.

    pytest benchmarks/test_corpus.py --benchmark-enable --benchmark-only

Times ``t2mbench corpus build --clips 64 --seconds 10 --seed 0`` in a fresh process (imports,
music21 parsing, rendering, loudness, writing, provenance), once with the default two worker
processes and once with one, and checks the requirement: under 2 minutes on the 2-core machine,
and byte-identical audio, ground truth and manifest from both runs. There is no upstream tool
to time beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from t2mbench.core.files import sha256_file

ARGS = ["--clips", "64", "--seconds", "10", "--seed", "0"]
LIMIT_S = 120.0


def _build(out: Path, workers: int) -> float:
    env = {**os.environ, "T2MBENCH_NO_PROGRESS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "t2mbench", "corpus", "build", "--out", str(out), *ARGS,
                    "--workers", str(workers)], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "provenance.json"}


def test_corpus_build_64_clips_of_10_s(benchmark, tmp_path):
    outs = iter([tmp_path / "two_workers"])
    benchmark.pedantic(lambda out: _build(out, 2), setup=lambda: ((next(outs),), {}), rounds=1, warmup_rounds=0)
    one_worker_s = _build(tmp_path / "one_worker", 1)
    two_workers_s = benchmark.stats.stats.min
    benchmark.extra_info.update({"two_workers_s": two_workers_s, "one_worker_s": one_worker_s, "limit_s": LIMIT_S})
    assert _hashes(tmp_path / "two_workers") == _hashes(tmp_path / "one_worker")
    assert len(_hashes(tmp_path / "two_workers")) == 3 * 64 + 2
    assert max(two_workers_s, one_worker_s) < LIMIT_S
