"""Scoring 64 clips of 10 s with the signal metrics (STFT, mel, SI-SDR, melody accuracy).

    pytest benchmarks/test_scoring.py --benchmark-enable --benchmark-only

The generated set is 44.1 kHz stereo (the rate Stable Audio Open writes), the reference 48 kHz
stereo, so the reference side is resampled (soxr HQ to 44.1 kHz for STFT/mel/SI-SDR, and
torchaudio's Hann sinc to 44.1 kHz for MuseControlLite's melody accuracy). One round of
:func:`t2mbench.metrics.scoring.score` (no embedding metrics, so no cache); ``extra_info`` records seconds
per clip and the share of the run spent decoding and resampling (from the run's own timers).
"""

from __future__ import annotations

import numpy as np
import pytest

from t2mbench.core.audio import save_audio
from t2mbench.core.manifest import ClipRecord, write_manifest
from t2mbench.metrics.scoring import score

CLIPS, SECONDS = 64, 10.0
METRICS = ["stft", "mel", "sisdr", "melody_acc"]


def write_set(folder, sample_rate: int, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    t = np.arange(int(SECONDS * sample_rate)) / sample_rate
    records = []
    for i in range(CLIPS):
        notes = 220.0 * 2 ** (np.random.default_rng(i).integers(0, 24, 20) / 12)  # same melody on both sides
        f0 = np.repeat(notes, -(-t.size // 20))[: t.size]
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        y = sum(0.5**h * np.sin((h + 1) * phase) for h in range(5)) * 0.3
        audio = np.stack([y, 0.8 * y]) + noise * rng.standard_normal((2, t.size))
        save_audio(folder / f"c{i:02d}.wav", audio.astype(np.float32), sample_rate)
        records.append(ClipRecord(id=f"c{i:02d}", path=folder / f"c{i:02d}.wav"))
    write_manifest(folder, records)
    return folder


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    return write_set(root / "gen", 44_100, 0.05, 1), write_set(root / "ref", 48_000, 0.01, 2)


def test_score_64_clips_of_10s_signal_metrics(benchmark, sets, tmp_path):
    gen, ref = sets
    run = benchmark.pedantic(
        lambda: score(gen, ref, METRICS, tmp_path / "out", use_cache=False, progress=False), rounds=1, iterations=1
    )
    timing = run.summary["timing"]
    benchmark.extra_info.update(
        clips=CLIPS, seconds_per_clip=benchmark.stats.stats.min / CLIPS,
        decode_s=timing["decode_seconds"], resample_s=timing["resample_seconds"],
        decode_resample_share=timing["decode_resample_share"], decodes=timing["decodes"], resamples=timing["resamples"],
    )  # fmt: skip
    assert timing["decodes"] == 2 * CLIPS and timing["resamples"] == 2 * CLIPS
    assert all(run.results[m].n_clips == CLIPS for m in METRICS)
