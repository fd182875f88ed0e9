"""LAION-CLAP audio embedding of 60 s (HTSAT-tiny fusion: global view + three random chunks), ours
against laion-clap, with peak memory (CPU).

    pytest benchmarks/test_clap.py --benchmark-enable --benchmark-only
    T2MBENCH_UPSTREAM_PYTHON=/work/fixenv/t291/bin/python pytest benchmarks/test_clap.py --benchmark-enable \\
        --benchmark-only -s     # also laion-clap, timed in a subprocess: prints the ratio and peak memory

Weights are the seeded full-size HTSAT-tiny fusion + RoBERTa-base (the cost does not depend on them),
saved once in the upstream layout so both sides load the same file. The subprocess comparison runs
``benchmarks/upstream/clap_time.py`` for each side in a fresh process (best of 3 after a warm-up;
peak RSS includes the ~0.64 GB of weights).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support.clap_weights import clap_weights, write_tokenizer

from t2mbench.metrics.embedders.clap import load_clap

SECONDS = 60
SR = 48000
TIMER = Path(__file__).parent / "upstream" / "clap_time.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clap")
    weights = root / "clap-seeded.pt"
    torch.save({k: torch.from_numpy(v) for k, v in clap_weights("htsat_tiny_fusion", 0).items()}, weights)
    return weights, write_tokenizer(root / "roberta-base")


def measure(python: str, side: str, files: tuple[Path, Path]) -> dict:
    cmd = [python, str(TIMER), "--side", side, "--weights", str(files[0]), "--tokenizer", str(files[1]),
           "--seconds", str(SECONDS)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_clap_embed_60s(benchmark, files):
    model = load_clap(files[0], tokenizer=files[1])
    wave = torch.from_numpy((0.1 * np.random.default_rng(0).standard_normal(SECONDS * SR)).astype(np.float32))
    benchmark.pedantic(lambda: model.embed(wave[None, None], SR), rounds=3, warmup_rounds=1)


def test_clap_60s_against_laion_clap(benchmark, files):
    python = os.environ.get("T2MBENCH_UPSTREAM_PYTHON")
    if not python:
        pytest.skip("T2MBENCH_UPSTREAM_PYTHON is not set: laion-clap is not timed (set it to a python with laion-clap)")
    ours = measure(sys.executable, "ours", files)
    upstream = measure(python, "upstream", files)
    ratio = upstream["seconds"] / ours["seconds"]
    cpu_ratio = upstream["cpu_seconds"] / ours["cpu_seconds"]
    benchmark.extra_info.update({"ours": ours, "upstream": upstream, "speedup": ratio, "cpu_speedup": cpu_ratio})
    print(
        f"\nCLAP 60 s: ours {ours['seconds']:.3f} s ({ours['cpu_seconds']:.3f} CPU-s), laion-clap "
        f"{upstream['seconds']:.3f} s ({upstream['cpu_seconds']:.3f} CPU-s): x{ratio:.2f} wall, x{cpu_ratio:.2f} CPU; "
        f"peak RSS ours {ours['peak_rss_mb']:.0f} MB, laion-clap {upstream['peak_rss_mb']:.0f} MB"
    )
    benchmark.pedantic(lambda: None, rounds=1)  # placeholder row: the numbers are printed and in extra_info
