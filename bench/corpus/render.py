"""Offline MIDI rendering: notes to stereo 44.1 kHz float32 through TinySoundFont with the
General MIDI soundfont that ships inside ``pretty_midi`` (``TimGM6mb.sf2``).

Notes are scheduled by this module at exact sample positions (tinysoundfont's own
Sequencer rounds event times in seconds up to whole samples per callback, so its timing
depends on buffer sizes); between events the synthesiser renders the gap. At one sample
position note-offs are sent before note-ons, so a repeated pitch re-attacks. TinySoundFont
has no random parts (no noise, no unseeded LFO), so the same notes give the same float
samples, run to run and process to process (tested).

tinysoundfont declares ``pyaudio``, which it needs only for live playback; install it with
``pip install --no-deps tinysoundfont``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from t2mbench.core.errors import T2MBenchError
from t2mbench.core.files import sha256_file

SAMPLE_RATE = 44_100
SOUNDFONT = "TimGM6mb.sf2"
DRUM_CHANNEL = 9
MAX_PARTS = 15  # 16 MIDI channels less the drum channel


class MissingDependencyError(T2MBenchError, ImportError):
    """A package the renderer needs is not installed; the message gives the install command."""


@dataclass(frozen=True)
class Notes:
    """Notes to render, parallel int arrays ``[N]``: ``part`` (0-based, one MIDI channel
    each), ``start`` and ``end`` (sample positions, end exclusive, may pass the clip end),
    ``key`` (MIDI pitch 0-127) and ``velocity`` (1-127)."""

    part: np.ndarray
    start: np.ndarray
    end: np.ndarray
    key: np.ndarray
    velocity: np.ndarray


def soundfont_path() -> Path:
    """``TimGM6mb.sf2`` inside the installed ``pretty_midi`` package."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the corpus renderer needs pretty_midi's soundfont: pip install pretty_midi")
    path = Path(next(iter(spec.submodule_search_locations))) / SOUNDFONT
    if not path.is_file():
        raise MissingDependencyError(f"{path}: pretty_midi is installed without {SOUNDFONT}; reinstall pretty_midi")
    return path


@lru_cache(maxsize=1)
def soundfont_sha256() -> str:
    """sha256 of the soundfont file, for provenance."""
    return sha256_file(soundfont_path())


def render(
    notes: Notes,
    programs: Sequence[int],
    pans: Sequence[int],
    n_samples: int,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Render ``notes`` to float32 stereo ``[2, n_samples]`` at ``sample_rate`` Hz.

    Args:
        notes: the notes; parts index ``programs`` and ``pans``.
        programs: General MIDI program (0-127, melodic bank 0) per part.
        pans: MIDI pan controller (CC 10) value per part, 0 = left, 64 = centre, 127 = right.
        n_samples: output length; notes starting at or after it, or shorter than one
            sample, are not played.

    Returns:
        Unnormalised float32 ``[2, n_samples]`` (row 0 left); exact zeros where nothing sounds.
    """
    tsf = _tinysoundfont()
    if len(programs) != len(pans) or not 1 <= len(programs) <= MAX_PARTS:
        raise ValueError(
            f"need 1-{MAX_PARTS} parts with one program and one pan each, got {len(programs)} and {len(pans)}"
        )
    synth = tsf.Synth(gain=0.0, samplerate=sample_rate)
    sfid = synth.sfload(_soundfont_bytes())
    for part, (program, pan) in enumerate(zip(programs, pans)):
        channel = _channel(part)
        synth.program_select(channel, sfid, 0, int(program))
        synth.control_change(channel, 10, int(pan))

    # events: (sample, 0 = off / 1 = on, part, key, velocity), sorted in that order
    keep = (notes.start < n_samples) & (notes.end > notes.start)
    part, start, end, key, vel = (np.asarray(a, dtype=np.int64)[keep] for a in
                                  (notes.part, notes.start, notes.end, notes.key, notes.velocity))
    events = np.concatenate([
        np.stack([start, np.ones_like(start), part, key, vel], axis=1),
        np.stack([end, np.zeros_like(end), part, key, np.zeros_like(vel)], axis=1),
    ])
    events = events[events[:, 0] < n_samples]
    events = events[np.lexsort(events.T[::-1])]

    out = np.zeros((n_samples, 2), dtype=np.float32)
    view = memoryview(out).cast("B")
    frame = 2 * out.itemsize
    pos = 0
    for sample, on, p, k, v in events.tolist():
        if sample > pos:
            synth.generate_simple(sample - pos, buffer=view[pos * frame : sample * frame])
            pos = sample
        if on:
            synth.noteon(_channel(p), k, v)
        else:
            synth.noteoff(_channel(p), k)
    if pos < n_samples:
        synth.generate_simple(n_samples - pos, buffer=view[pos * frame :])
    return np.ascontiguousarray(out.T)


def _channel(part: int) -> int:
    return part if part < DRUM_CHANNEL else part + 1


def _tinysoundfont():
    try:
        import tinysoundfont
    except ImportError:
        raise MissingDependencyError(
            "the corpus renderer needs tinysoundfont: pip install --no-deps tinysoundfont "
            "(its pyaudio dependency is only for live playback)"
        ) from None
    return tinysoundfont


@lru_cache(maxsize=1)
def _soundfont_bytes() -> bytes:
    return soundfont_path().read_bytes()
