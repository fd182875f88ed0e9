"""Small generated/reference clip sets on disk for the scoring-engine and ``t2mbench score`` tests.

Each clip is a short harmonic tone (a different pitch per id) plus seeded noise; the
generated side is the reference with more noise and a little gain, so every paired metric has
a finite, non-trivial value. Sets are written as t2mbench folders (``manifest.jsonl`` with
captions, attributes and ground-truth ``.npz`` files for ``pitch_acc``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2mbench.core.audio import save_audio
from t2mbench.core.manifest import ClipRecord, write_manifest


def tone(f0: float, seconds: float, sample_rate: int, channels: int, noise: float, seed: int) -> np.ndarray:
    """float32 ``[channels, T]``: 4 harmonics of ``f0`` at 0.3 peak-ish, plus N(0, noise²)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    y = sum(0.5**h * np.sin(2 * np.pi * (h + 1) * f0 * t) for h in range(4)) * 0.3
    out = np.stack([y * (1.0 - 0.2 * c) for c in range(channels)]) + noise * rng.standard_normal((channels, t.size))
    return out.astype(np.float32)


def write_set(
    folder: Path,
    ids: list[str],
    *,
    noise: float,
    gain: float = 1.0,
    seconds: float = 0.5,
    sample_rate: int = 22_050,
    channels: int = 2,
    seed: int = 0,
    attributes: dict | None = None,
) -> Path:
    """Write clips ``ids`` (pitch from the id's position) into ``folder`` with a manifest; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, cid in enumerate(ids):
        f0 = 220.0 * 2 ** (i / 12)
        audio = gain * tone(f0, seconds, sample_rate, channels, noise, seed + i)
        save_audio(folder / f"{cid}.wav", audio, sample_rate)
        frames = int(seconds * 100)
        np.savez(folder / f"{cid}.npz", melody_times=np.arange(frames) * 0.01, melody_hz=np.full(frames, f0))
        records.append(ClipRecord(
            id=cid, path=folder / f"{cid}.wav", caption=f"a tone at {f0:.0f} hertz", sample_rate=sample_rate,
            channels=channels, truth=folder / f"{cid}.npz", attributes={**(attributes or {}), "seed": seed + i},
        ))
    write_manifest(folder, records)
    return folder


def write_pair(root: Path, n: int = 4, **kwargs) -> tuple[Path, Path]:
    """A generated and a reference set of ``n`` clips with the same ids."""
    ids = [f"clip{i}" for i in range(n)]
    ref = write_set(root / "reference", ids, noise=0.01, seed=100, **kwargs)
    gen = write_set(root / "generated", ids, noise=0.05, gain=0.8, seed=200,
                    attributes={"sampler": "euler", "steps": 8}, **kwargs)
    return gen, ref
