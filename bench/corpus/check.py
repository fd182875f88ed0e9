"""Validating a clip set (a built corpus or an external set) and summarising it.

Accepted sets are those :func:`t2mbench.core.manifest.load_clipset` reads. An external set is a
folder of audio plus one ``.csv`` or ``.jsonl`` table with columns ``id``, ``caption`` and
optionally ``path`` (relative to the table's folder, or absolute); without ``path`` the
audio is ``<folder>/<id>.wav`` (or .flac, .ogg, .mp3). This is how MusicCaps or Song
Describer come in: ``captions.csv`` with ``id,caption`` beside ``<id>.wav`` files.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from t2mbench.core.audio import load_audio
from t2mbench.core.errors import AudioError, ManifestError
from t2mbench.core.files import sha256_file
from t2mbench.core.manifest import _listing, load_clipset


@dataclass
class SetSummary:
    """Counts over a checked set; ``seconds`` are the audio files' durations."""

    source: Path
    clips: int
    total_seconds: float
    min_seconds: float
    max_seconds: float
    sample_rates: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    splits: Counter = field(default_factory=Counter)
    captions: int = 0
    truth: int = 0
    hashes_verified: int = 0

    def text(self) -> str:
        """A few human-readable lines."""
        rates = ", ".join(f"{sr} Hz ({n})" for sr, n in sorted(self.sample_rates.items()))
        chans = ", ".join(f"{c} ({n})" for c, n in sorted(self.channels.items()))
        splits = ", ".join(f"{s} {n}" for s, n in sorted(self.splits.items())) or "none"
        return "\n".join([
            f"{self.source}: {self.clips} clips, {self.total_seconds / 60:.1f} min of audio "
            f"({self.min_seconds:.2f}-{self.max_seconds:.2f} s each)",
            f"sample rates: {rates}; channels: {chans}",
            f"splits: {splits}",
            f"captions: {self.captions}/{self.clips}; ground truth: {self.truth}/{self.clips}; "
            f"sha256 verified: {self.hashes_verified}/{self.clips}",
        ])


def check_set(path: str | os.PathLike, *, verify_hashes: bool = True) -> SetSummary:
    """Load the set at ``path`` and check every clip as ``score`` would read it: the audio
    decodes, holds no NaN or Inf and is not digital silence, its sample rate, channel count and
    length agree with the manifest where it records them (longer or shorter by more than one
    sample is reported), its sha256 matches (when recorded and ``verify_hashes``), and its
    ground-truth file exists (when named).

    Raises:
        ManifestError: the set does not load (missing, duplicate or unmatched ids), or some
            clips fail a check; the message lists the ids per failed check.
    """
    clipset = load_clipset(path)
    problems: dict[str, list[str]] = defaultdict(list)
    summary = SetSummary(clipset.source, len(clipset), 0.0, float("inf"), 0.0)
    for clip in clipset:
        try:
            info = sf.info(str(clip.path))
            audio, _ = load_audio(clip.path)
        except AudioError as e:
            kind = "NaN or Inf samples (score refuses them)" if "NaN" in str(e) else "unreadable audio"
            problems[kind].append(clip.id)
            continue
        except (sf.LibsndfileError, RuntimeError) as e:
            problems[f"unreadable audio ({e.__class__.__name__})"].append(clip.id)
            continue
        if not np.any(audio):
            problems["digital silence (score cannot peak-normalise it for FD, KL or CLAP)"].append(clip.id)
        seconds = info.frames / info.samplerate
        summary.total_seconds += seconds
        summary.min_seconds = min(summary.min_seconds, seconds)
        summary.max_seconds = max(summary.max_seconds, seconds)
        summary.sample_rates[info.samplerate] += 1
        summary.channels[info.channels] += 1
        summary.splits.update([clip.split] if clip.split else [])
        summary.captions += bool(clip.caption)
        if clip.sample_rate is not None and clip.sample_rate != info.samplerate:
            problems["sample rate differs from the manifest"].append(clip.id)
        if clip.channels is not None and clip.channels != info.channels:
            problems["channel count differs from the manifest"].append(clip.id)
        if clip.seconds is not None and info.frames - clip.seconds * info.samplerate > 1:
            problems["longer than the manifest's seconds"].append(clip.id)
        if clip.seconds is not None and clip.seconds * info.samplerate - info.frames > 1:
            problems["shorter than the manifest's seconds"].append(clip.id)
        if clip.truth is not None:
            if clip.truth.is_file():
                summary.truth += 1
            else:
                problems["ground-truth file missing"].append(clip.id)
        if verify_hashes and clip.sha256:
            if sha256_file(clip.path) == clip.sha256:
                summary.hashes_verified += 1
            else:
                problems["sha256 differs from the manifest"].append(clip.id)
    if problems:
        detail = "; ".join(f"{what}: {_listing(ids)}" for what, ids in problems.items())
        raise ManifestError(f"{clipset.source}: {detail}")
    return summary
