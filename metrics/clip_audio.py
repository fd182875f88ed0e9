"""One clip's audio for a scoring run: decoded once, resampled once per (rate, resampler).

Every metric of a run reads the same :class:`ClipAudio`, so a clip is decoded once and
resampled at most once per sample rate and resampler, whatever the number of metrics.
Mono versions are the channel mean of the resampled multichannel signal. librosa averages
*before* resampling; both resamplers are linear, so the two orders agree to float32 rounding
(~1e-7 relative), and sharing one resample keeps results independent of which metrics run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from t2mbench.core.audio import load_audio, resample
from t2mbench.core.dsp.resample_hann import resample_hann
from t2mbench.core.errors import ManifestError
from t2mbench.core.files import sha256_file
from t2mbench.core.manifest import ClipRecord

Resampler = Literal["soxr_hq", "sinc_hann"]
RESAMPLERS: tuple[str, ...] = ("soxr_hq", "sinc_hann")


@dataclass
class AudioTimer:
    """Seconds spent decoding and resampling, summed over the clips of a run."""

    decode_s: float = 0.0
    resample_s: float = 0.0
    decodes: int = 0
    resamples: int = 0


class ClipAudio:
    """Lazily decoded audio of one :class:`~t2mbench.core.manifest.ClipRecord`.

    Arrays are float32 ``[C, T]``. Nothing is read until a method needs it, so a clip whose
    embeddings all come from the cache is never decoded.
    """

    def __init__(self, record: ClipRecord, timer: AudioTimer | None = None) -> None:
        self.record = record
        self.timer = timer or AudioTimer()
        self._native: np.ndarray | None = None
        self._sr: int | None = None
        self._resampled: dict[tuple[int, str], np.ndarray] = {}
        self._mono: dict[tuple[int, str], np.ndarray] = {}
        self._sha256: str | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def source(self) -> str:
        return str(self.record.path)

    def native(self) -> tuple[np.ndarray, int]:
        """The decoded file ``([C, T] float32, rate)``.

        Raises:
            AudioError: unreadable, empty, NaN/Inf, unsupported rate or channel count.
            ManifestError: the manifest declares a sample rate the file does not have.
        """
        if self._native is None:
            t0 = time.perf_counter()
            audio, sr = load_audio(self.record.path)
            self.timer.decode_s += time.perf_counter() - t0
            self.timer.decodes += 1
            declared = self.record.sample_rate
            if declared is not None and declared != sr:
                raise ManifestError(
                    f"{self.source}: the manifest says {declared} Hz but the file is {sr} Hz; fix the manifest's "
                    "sample_rate (metrics resample every clip to the rate they need)"
                )
            self._native, self._sr = audio, sr
        return self._native, int(self._sr)

    @property
    def sample_rate(self) -> int:
        return self.native()[1]

    @property
    def seconds(self) -> float:
        audio, sr = self.native()
        return audio.shape[-1] / sr

    def peak(self) -> float:
        """max |x| over all samples and channels at the native rate."""
        return float(np.max(np.abs(self.native()[0])))

    def at(self, sample_rate: int, resampler: Resampler = "soxr_hq") -> np.ndarray:
        """All channels at ``sample_rate`` Hz: soxr HQ (librosa's loader) or torchaudio's
        default Hann-windowed sinc (:func:`t2mbench.core.dsp.resample_hann.resample_hann`)."""
        if resampler not in RESAMPLERS:
            raise ValueError(f"unknown resampler {resampler!r}; use one of {', '.join(RESAMPLERS)}")
        audio, sr = self.native()
        if sr == sample_rate:
            return audio
        key = (sample_rate, resampler)
        if key not in self._resampled:
            t0 = time.perf_counter()
            if resampler == "soxr_hq":
                out = resample(audio, sr, sample_rate)
            else:
                out = resample_hann(audio, sr, sample_rate)
            self.timer.resample_s += time.perf_counter() - t0
            self.timer.resamples += 1
            self._resampled[key] = out
        return self._resampled[key]

    def mono(self, sample_rate: int, resampler: Resampler = "soxr_hq") -> np.ndarray:
        """Channel mean ``[1, T]`` of :meth:`at` (computed in float64, stored float32)."""
        key = (sample_rate, resampler)
        if key not in self._mono:
            audio = self.at(sample_rate, resampler)
            if audio.shape[0] > 1:
                audio = audio.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
            self._mono[key] = audio
        return self._mono[key]

    def content_sha256(self) -> str:
        """sha256 of the file's bytes (the embedding-cache key), computed once."""
        if self._sha256 is None:
            self._sha256 = sha256_file(self.record.path)
        return self._sha256

    def release(self) -> None:
        """Drop the decoded arrays (the hash is kept)."""
        self._native = None
        self._resampled.clear()
        self._mono.clear()
