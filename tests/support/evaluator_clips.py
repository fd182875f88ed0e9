"""Deterministic audio for the evaluator's tests and its golden fixture
(``tools/fixtures/make_evaluator_golden.py``): a rendered chord and a tiny corpus folder with the
manifest shape of ``t2mbench corpus build`` (captions, splits, attributes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2mbench.core.audio import save_audio
from t2mbench.core.files import sha256_file
from t2mbench.core.manifest import ClipRecord, write_manifest

SAMPLE_RATE = 44_100
GOLDEN_CAPTIONS = (
    "composer: J.S. Bach, instruments: violin, cello, tempo: 96 bpm, key: G major, mood: calm",
    "piano, 140 bpm, A minor, dramatic",
)


def chord(seconds: float = 3.0, sample_rate: int = SAMPLE_RATE, midi: tuple[int, ...] = (60, 64, 67)) -> np.ndarray:
    """A stereo chord ``[2, T]`` float32: per note, 6 harmonics with amplitude 1/k and a 1.5 s
    exponential decay after a 10 ms attack; left and right differ in note balance; peak 0.5."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    env = np.minimum(1.0, t / 0.01) * np.exp(-t / 1.5)
    notes = [
        env * sum(np.sin(2 * np.pi * k * 440.0 * 2 ** ((m - 69) / 12) * t) / k for k in range(1, 7)) for m in midi
    ]
    left = sum(n * (1.0 - 0.2 * i) for i, n in enumerate(notes))
    right = sum(n * (0.6 + 0.2 * i) for i, n in enumerate(notes))
    audio = np.stack([left, right])
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


_FAMILIES = {"strings": ("violin", 55), "keyboard": ("piano", 0), "brass": ("trumpet", 56)}


def tiny_corpus(folder: Path, *, seconds: float = 3.0, n_train: int = 6, n_test: int = 3) -> Path:
    """A corpus folder of ``n_train + n_test`` chords (one piece each) with the corpus manifest."""
    rows = []
    names = list(_FAMILIES)
    for i in range(n_train + n_test):
        family = names[i % 3]
        mode = "major" if i % 2 == 0 else "minor"
        root = 55 + (i * 5) % 12
        notes = (root, root + (4 if mode == "major" else 3), root + 7)
        bpm = 70 + 25 * i
        bucket = "slow" if bpm < 90 else "medium" if bpm < 130 else "fast"
        cid = f"clip{i:02d}"
        path = save_audio(folder / f"{cid}.wav", chord(seconds, midi=notes), SAMPLE_RATE)
        instrument, program = _FAMILIES[family]
        mood = "bright" if mode == "major" else "dark"
        caption = f"instruments: {instrument}, tempo: {bpm} bpm, mode: {mode}, mood: {mood}"
        rows.append(
            ClipRecord(
                id=cid, path=path, caption=caption, seconds=seconds, sample_rate=SAMPLE_RATE, channels=2,
                sha256=sha256_file(path), split="train" if i < n_train else "test",
                attributes={
                    "composer": "Anonymous", "title": f"Chord {i}", "collection": "tests", "piece": f"chord{i}",
                    "programs": [program], "instrument_families": [family], "tempo_bpm": bpm, "tempo_bucket": bucket,
                    "key": f"{['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B'][root % 12]} {mode}",
                    "mode": mode, "mood": [mood], "note_density": 1.0,
                },
            )
        )  # fmt: skip
    write_manifest(folder, rows)
    return folder
