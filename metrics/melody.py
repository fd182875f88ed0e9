"""Melody accuracy: MuseControlLite's chroma measure, and mir_eval's pitch-track scores.

**Chroma melody accuracy** (MuseControlLite ``extract_melody_one_hot`` and the "Mel acc."
computation in ``evaluate_and_plot_results``), per generated/reference pair:

1. mono = channel mean; resample to 44.1 kHz with torchaudio's default Hann-sinc resampler
   (:mod:`t2mbench.core.dsp.resample_hann`; identity at 44.1 kHz);
2. 2nd-order Butterworth high-pass at 261.2 Hz (``scipy.signal.butter(2, 261.2/22050,
   "high")``) applied zero-phase with ``scipy.signal.filtfilt`` (default odd padding);
3. librosa 0.10 ``chroma_stft(sr=44100, n_fft=2048, win_length=2048, hop_length=256)`` with
   per-file tuning estimation (:mod:`t2mbench.core.dsp.chroma`); ≈172.3 frames/s;
4. the pitch class of each frame is the argmax over the 12 classes (ties → lowest index;
   silent frames → C);
5. accuracy = #{t < T_min : class_gen(t) = class_ref(t)} / T_min, T_min = min(T_gen, T_ref)
   (frames aligned from t = 0, the longer one truncated). The dataset value is the mean over
   clips (UNCERTAIN how the paper aggregated; the per-clip mean is what the code prints).

Silence maps to class C in both clips and counts as a match, as upstream.

**mir_eval.melody** (0.8.2, semantics unchanged since 0.6) re-implemented:
:func:`to_cent_voicing`, :func:`raw_pitch_accuracy`, :func:`raw_chroma_accuracy`,
:func:`overall_accuracy` with mir_eval's defaults (resample the estimate onto the reference
times, 10 Hz cents base, 50-cent tolerance, negative estimate frequencies = unvoiced guesses).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from scipy.signal import butter, filtfilt

from t2mbench.core.dsp.chroma import chroma_stft
from t2mbench.metrics.base import ClipMeanMetric, ScoringItem
from t2mbench.metrics.pairs import short_clip

SAMPLE_RATE = 44_100
HIGHPASS_HZ = 261.2
N_FFT = 2048
HOP = 256
CENT_TOLERANCE = 50.0


@lru_cache(maxsize=4)
def _highpass(sample_rate: int, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    return butter(N=2, Wn=cutoff / (0.5 * sample_rate), btype="high", analog=False)


def melody_classes(mono: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Top-1 pitch class per chroma frame (int64 ``[1 + T // 256]``, 0 = C) of mono ``[T]`` or
    ``[1, T]`` audio already at ``sample_rate`` (44.1 kHz in MuseControlLite): steps 2–4 above."""
    y = np.asarray(mono, dtype=np.float32).reshape(-1)
    b, a = _highpass(sample_rate, HIGHPASS_HZ)
    if y.shape[0] <= 3 * max(len(a), len(b)):
        raise ValueError(f"{y.shape[0]} samples are too few for the zero-phase high-pass (needs more than 9)")
    y_hp = filtfilt(b, a, y)
    return np.argmax(chroma_stft(y_hp, sample_rate, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT), axis=0)


def melody_accuracy(generated: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of the first min(T_gen, T_ref) frames whose pitch classes agree."""
    n = min(len(generated), len(reference))
    if n == 0:
        raise ValueError("melody accuracy needs at least one chroma frame on each side")
    return float(np.mean(np.asarray(generated[:n]) == np.asarray(reference[:n])))


class MelodyAccuracy(ClipMeanMetric):
    """MuseControlLite chroma melody accuracy of each generated clip against its reference
    (paired by id). ``update(generated_mono, reference_mono, ids)`` takes lists of mono
    44.1-kHz signals."""

    paired = True
    higher_is_better = True
    protocol_version = "musecontrollite-308bec3"

    def settings(self) -> dict[str, Any]:
        return {"sample_rate": SAMPLE_RATE, "resampler": "torchaudio sinc_interp_hann width 6 rolloff 0.99",
                "highpass": f"butterworth order 2 at {HIGHPASS_HZ} Hz, filtfilt", "n_fft": N_FFT, "hop_length": HOP,
                "chroma": "librosa 0.10 chroma_stft, tuning estimated per clip, argmax", **self.ci_settings()}

    def update(self, generated: list[np.ndarray], reference: list[np.ndarray], ids: list[str]) -> None:
        if not len(generated) == len(reference) == len(ids):
            raise ValueError(f"got {len(generated)} generated, {len(reference)} reference signals and {len(ids)} ids")
        for cid, g, r in zip(ids, generated, reference):
            self.add(cid, value=melody_accuracy(melody_classes(g), melody_classes(r)))

    def feed(self, item: ScoringItem) -> None:
        if item.generated is None or item.reference is None:
            raise ValueError(f"clip {item.clip_id!r}: melody accuracy needs the generated and the reference clip")
        gen = item.generated.mono(SAMPLE_RATE, "sinc_hann")
        ref = item.reference.mono(SAMPLE_RATE, "sinc_hann")
        message = short_clip(item.clip_id, gen.shape[-1], ref.shape[-1], SAMPLE_RATE)
        if message:
            self.warn(message)
        self.update([gen], [ref], [item.clip_id])


# ---- mir_eval.melody -------------------------------------------------------------------


def hz_to_cents(freq_hz: np.ndarray, base_frequency: float = 10.0) -> np.ndarray:
    """1200·log2(|f| / base) for f ≠ 0; 0 stays 0."""
    f = np.abs(np.asarray(freq_hz, dtype=np.float64))
    out = np.zeros_like(f)
    nz = f != 0
    out[nz] = 1200.0 * np.log2(f[nz] / base_frequency)
    return out


def _hold(times: np.ndarray, values: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Zero-order hold (right-continuous step), scipy ``interp1d(kind="zero")``."""
    idx = np.clip(np.searchsorted(times, new_times, side="right") - 1, 0, len(times) - 1)
    return values[idx]


def _resample_series(
    times: np.ndarray, cents: np.ndarray, voicing: np.ndarray, new_times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """mir_eval ``resample_melody_series(kind="linear")``: cents interpolated linearly with the
    pitch held across unvoiced gaps, then zeroed where the held original is 0; binary voicing
    is held, continuous voicing interpolated."""
    if times.shape == new_times.shape and np.allclose(times, new_times):
        return cents, voicing
    times, new_times = np.round(times, 10), np.round(new_times, 10)
    if new_times.max() > times.max():
        times = np.append(times, new_times.max())
        cents, voicing = np.append(cents, 0.0), np.append(voicing, 0.0)
    held = cents.copy()
    for n in range(1, len(held)):
        if held[n] == 0:
            held[n] = held[n - 1]
    out = np.interp(new_times, times, held) * (_hold(times, cents, new_times) != 0)
    binary = np.all((voicing == 0) | (voicing == 1))
    out_voicing = _hold(times, voicing, new_times) if binary else np.interp(new_times, times, voicing)
    return out, out_voicing


def to_cent_voicing(
    ref_time: np.ndarray,
    ref_freq: np.ndarray,
    est_time: np.ndarray,
    est_freq: np.ndarray,
    base_frequency: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """mir_eval ``to_cent_voicing`` with ``hop=None``: the estimate is resampled onto the
    reference times; returns ``(ref_voicing, ref_cents, est_voicing, est_cents)`` on the
    reference grid. Frequencies ≤ 0 are unvoiced; a negative estimate keeps |f| as its pitch."""
    ref_time, ref_freq = np.asarray(ref_time, float), np.asarray(ref_freq, float)
    est_time, est_freq = np.asarray(est_time, float), np.asarray(est_freq, float)
    if ref_time.size == 0 or est_time.size == 0:
        raise ValueError("melody series must not be empty")
    if ref_time.shape != ref_freq.shape or est_time.shape != est_freq.shape:
        raise ValueError("each melody series needs one frequency per time stamp (seconds, Hz)")
    if ref_time[0] > 0:
        ref_time, ref_freq = np.insert(ref_time, 0, 0.0), np.insert(ref_freq, 0, ref_freq[0])
    if est_time[0] > 0:
        est_time, est_freq = np.insert(est_time, 0, 0.0), np.insert(est_freq, 0, est_freq[0])
    ref_voicing = (ref_freq > 0).astype(float)
    est_voicing = (est_freq > 0).astype(float)
    ref_cent = hz_to_cents(ref_freq, base_frequency)
    est_cent, est_voicing = _resample_series(est_time, hz_to_cents(est_freq, base_frequency), est_voicing, ref_time)
    n = ref_cent.shape[0]
    if est_cent.shape[0] < n:
        pad = n - est_cent.shape[0]
        est_cent, est_voicing = np.append(est_cent, np.zeros(pad)), np.append(est_voicing, np.zeros(pad))
    return ref_voicing, ref_cent, est_voicing[:n], est_cent[:n]


def _pitch_hits(ref_voicing, ref_cent, est_cent, *, chroma: bool) -> float:
    if ref_voicing.size == 0 or ref_voicing.sum() == 0:
        return 0.0
    both = (est_cent != 0) & (ref_cent != 0)
    if not both.any():
        return 0.0
    diff = np.abs(ref_cent - est_cent)[both]
    if chroma:
        diff = np.abs(diff - 1200.0 * np.floor(diff / 1200.0 + 0.5))
    return float(np.sum(ref_voicing[both] * (diff < CENT_TOLERANCE)) / np.sum(ref_voicing))


def raw_pitch_accuracy(ref_voicing, ref_cent, est_voicing, est_cent) -> float:
    """Share of voiced reference frames whose estimate is within 50 cents (0 without voiced frames)."""
    return _pitch_hits(ref_voicing, ref_cent, est_cent, chroma=False)


def raw_chroma_accuracy(ref_voicing, ref_cent, est_voicing, est_cent) -> float:
    """As :func:`raw_pitch_accuracy` with octave errors forgiven."""
    return _pitch_hits(ref_voicing, ref_cent, est_cent, chroma=True)


def overall_accuracy(ref_voicing, ref_cent, est_voicing, est_cent) -> float:
    """Share of frames right in both voicing and (for voiced ones) pitch within 50 cents."""
    if ref_voicing.size == 0:
        return 0.0
    both = (est_cent != 0) & (ref_cent != 0)
    correct = np.abs(ref_cent - est_cent)[both] < CENT_TOLERANCE
    ref_binary = (ref_voicing > 0).astype(float)
    ratio = 0.0 if np.sum(ref_voicing) == 0 else np.sum(ref_binary) / np.sum(ref_voicing)
    hits = ratio * np.sum(ref_voicing[both] * est_voicing[both] * correct)
    return float((hits + np.sum((1.0 - ref_binary) * (1.0 - est_voicing))) / len(ref_voicing))


def melody_scores(ref_time, ref_freq, est_time, est_freq) -> dict[str, float]:
    """``raw_pitch``, ``raw_chroma`` and ``overall`` accuracy of an f0 track against a reference melody."""
    curves = to_cent_voicing(ref_time, ref_freq, est_time, est_freq)
    return {
        "raw_pitch": raw_pitch_accuracy(*curves),
        "raw_chroma": raw_chroma_accuracy(*curves),
        "overall": overall_accuracy(*curves),
    }
