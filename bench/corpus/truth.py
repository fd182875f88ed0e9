"""Ground truth of a rendered clip, for later metrics (melody accuracy, beat and tempo
error, key and instrument prediction, loudness curves).

``truth/<id>.npz`` holds:

- ``frame_rate``: 100 (Hz), the MIREX 10-ms melody grid;
- ``melody_times`` float64 ``[F]``: ``k / 100`` s for ``k < seconds * 100``;
- ``melody_midi`` int16 ``[F]``: the top voice, i.e. the highest transposed MIDI pitch
  sounding at that instant across all parts (note onset <= t < note-off, times on the
  audio's sample grid), -1 where nothing sounds (unvoiced);
- ``melody_hz`` float64 ``[F]``: ``440 * 2 ** ((midi - 69) / 12)``, 0 where unvoiced
  (the MIREX convention);
- ``beat_times`` float64 ``[B]`` (s) and ``tempo_bpm`` (beats of the time signature's beat
  unit per minute);
- ``loudness_times``/``loudness_db`` float64 ``[L]``: RMS over both channels of
  consecutive 50-ms windows of the mix as written (before 16-bit quantisation), in dBFS
  (``20 log10 rms``; a full-scale sine reads -3.01), floored at -120 dB, each time the
  window centre;
- ``programs`` int16 ``[P]``: General MIDI program per part;
- ``key`` and ``mode`` (0-d unicode): the clip's key (:func:`estimate_key`), e.g. "Bb", "major";
- ``note_density`` float64: notes per second (:func:`note_density`), 4 decimals.

The npz is written without timestamps, so the same truth gives the same bytes.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from t2mbench.bench.corpus.arrange import ClipNotes
from t2mbench.core.files import atomic_path

FRAME_RATE = 100
LOUDNESS_WINDOW_S = 0.05
SILENCE_DB = -120.0

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# spellings: flats for major keys except F#, sharps for minor keys except Eb and Bb
MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


def melody(notes: ClipNotes, seconds: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-voice melody on the 100-Hz grid: ``(times [F] s, midi [F] int16 (-1 unvoiced),
    hz [F] float64 (0 unvoiced))``."""
    n_frames = int(round(seconds * FRAME_RATE))
    times = np.arange(n_frames, dtype=np.float64) / FRAME_RATE
    frame_samples = np.round(times * sample_rate)
    first = np.searchsorted(frame_samples, notes.start, side="left")  # first frame at or after the onset
    stop = np.searchsorted(frame_samples, notes.end, side="left")  # first frame at or after the note-off
    midi = np.full(n_frames, -1, dtype=np.int16)
    for a, b, p in zip(first.tolist(), stop.tolist(), notes.pitch.tolist()):
        np.maximum(midi[a:b], p, out=midi[a:b])
    hz = np.where(midi >= 0, 440.0 * 2.0 ** ((midi - 69) / 12.0), 0.0)
    return times, midi, hz


def loudness_curve(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """RMS of consecutive 50-ms windows of ``[C, T]`` audio in dBFS: ``(centre times [L] s, dB [L])``;
    a last partial window is dropped."""
    win = int(round(LOUDNESS_WINDOW_S * sample_rate))
    n = audio.shape[-1] // win
    frames = audio[:, : n * win].astype(np.float64).reshape(audio.shape[0], n, win)
    power = (frames**2).mean(axis=(0, 2))
    with np.errstate(divide="ignore"):
        db = np.maximum(10.0 * np.log10(power), SILENCE_DB)
    times = (np.arange(n) * win + win / 2) / sample_rate
    return times, db


def estimate_key(notes: ClipNotes, seconds: float, sample_rate: int) -> tuple[str, str]:
    """Krumhansl-Schmuckler key of the clip: Pearson correlation of the duration-weighted
    pitch-class histogram (durations clipped to the clip) with the 24 rotated
    Krumhansl-Kessler profiles; returns ``(tonic name, "major" | "minor")``."""
    end = int(round(seconds * sample_rate))
    weight = (np.minimum(notes.end, end) - notes.start).clip(min=0).astype(np.float64)
    hist = np.bincount(notes.pitch % 12, weights=weight, minlength=12)
    tonic, mode = key_from_histogram(hist)
    return (MAJOR_TONICS if mode == "major" else MINOR_TONICS)[tonic], mode


def key_from_histogram(hist: np.ndarray) -> tuple[int, str]:
    """Best ``(tonic pitch class, mode)`` for a 12-bin pitch-class histogram (ties: major,
    then the lower pitch class)."""
    best = (-np.inf, 0, "major")
    for mode, profile in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1] if hist.std() > 0 else 0.0
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def note_density(notes: ClipNotes, seconds: float) -> float:
    """Notes (each pitch of a chord counts) whose onset lies in the clip, per second."""
    return float(notes.in_clip.sum()) / seconds


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an ``.npz`` (readable by :func:`numpy.load`) atomically, with
    fixed zip timestamps and sorted member names, so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)
