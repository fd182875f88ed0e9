"""A predominant-pitch (melody) tracker: harmonic-summation salience on spectral peaks.

Signal processing only (no weights), after the salience function of Salamon & Gómez's
Melodia (IEEE TASLP 2012), without its contour tracking:

1. mono audio at 44.1 kHz; centred frames every 10 ms (hop 441, frame k at t = k·0.01 s,
   zero padding at the ends), 4096-point periodic Hann window, magnitude spectrum;
2. spectral peaks: the 40 largest local maxima of each frame within 40 dB of its largest,
   with parabolic interpolation of frequency and magnitude on the dB spectrum;
3. salience on a 10-cent grid from 55 Hz to 1760 Hz (A1–A6): each peak (f_p, a_p) adds
   a_p · α^(h−1) · cos²(π/2 · d/100) to every candidate f0 with d = |1200·log2(f_p / (h·f0))| < 100
   cents, for harmonics h = 1..10, α = 0.8;
4. f0 of the frame = the most salient candidate, refined by a parabola over its neighbours;
   voiced when its salience is at least 10 % of the clip's largest frame salience and the
   frame's RMS is within 50 dB of the loudest frame. Unvoiced frames report −f0 (the best
   guess, mir_eval's convention), so raw pitch/chroma accuracy still judge their pitch.

It tracks the most salient harmonic series, which in a dense polyphonic mix may be an
accompanying voice rather than the melody; scores are comparable between systems only with
the same tracker and settings (recorded with every result as ``protocol_version``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from t2mbench.metrics.base import ClipMeanMetric, MetricError, ScoringItem
from t2mbench.metrics.melody import melody_scores

SAMPLE_RATE = 44_100
HOP = 441
N_FFT = 4096
FMIN, FMAX = 55.0, 1760.0
CENTS_STEP = 10.0
HARMONICS = 10
ALPHA = 0.8
PEAK_RANGE_DB = 40.0
MAX_PEAKS = 40
VOICING_SALIENCE = 0.1
VOICING_RMS_DB = 50.0
_SPREAD = 100.0  # cents either side of a harmonic that a peak contributes to
_FRAME_CHUNK = 256


@dataclass(frozen=True)
class PitchTrack:
    """``times`` (s, 10 ms grid from 0), ``f0_hz`` (negative = unvoiced guess), ``salience``."""

    times: np.ndarray
    f0_hz: np.ndarray
    salience: np.ndarray


def track_pitch(mono: np.ndarray, sample_rate: int = SAMPLE_RATE) -> PitchTrack:
    """Predominant f0 of mono ``[T]`` (or ``[1, T]``) float audio at 44.1 kHz, one value per 10 ms."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the pitch tracker works at {SAMPLE_RATE} Hz; resample first (got {sample_rate})")
    y = np.asarray(mono, dtype=np.float64).reshape(-1)
    if y.size == 0 or not np.isfinite(y).all():
        raise ValueError("pitch tracking needs a non-empty, finite signal")
    frames = _frames(y)
    n_bins = int(round(1200.0 * np.log2(FMAX / FMIN) / CENTS_STEP)) + 1
    salience = np.zeros((frames.shape[0], n_bins))
    rms = np.sqrt(np.mean(frames**2, axis=1))
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    for s in range(0, frames.shape[0], _FRAME_CHUNK):
        mag = np.abs(np.fft.rfft(frames[s : s + _FRAME_CHUNK] * window, axis=-1))
        salience[s : s + _FRAME_CHUNK] = _salience(mag, n_bins)
    best = np.argmax(salience, axis=1)
    peak = salience[np.arange(len(best)), best]
    cents = best * CENTS_STEP + _vertex(salience, best) * CENTS_STEP
    f0 = FMIN * 2.0 ** (cents / 1200.0)
    loud = rms > 0
    if loud.any():
        loud &= 20.0 * np.log10(np.maximum(rms, 1e-300) / rms.max()) > -VOICING_RMS_DB
    voiced = loud & (peak > 0) & (peak >= VOICING_SALIENCE * peak.max())
    times = np.arange(frames.shape[0]) * HOP / SAMPLE_RATE
    return PitchTrack(times, np.where(voiced, f0, -f0), peak)


def _frames(y: np.ndarray) -> np.ndarray:
    padded = np.pad(y, N_FFT // 2)
    n_frames = 1 + y.shape[0] // HOP
    view = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    if view.shape[0] < n_frames:
        padded = np.pad(padded, (0, N_FFT))
        view = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return view[:n_frames]


def _salience(mag: np.ndarray, n_bins: int) -> np.ndarray:
    """Harmonic-summation salience ``[frames, n_bins]`` from magnitude spectra ``[frames, N_FFT/2 + 1]``."""
    db = 20.0 * np.log10(np.maximum(mag, 1e-12))
    inner = db[:, 1:-1]
    is_peak = (inner > db[:, :-2]) & (inner >= db[:, 2:])
    is_peak &= inner > db.max(axis=1, keepdims=True) - PEAK_RANGE_DB
    ranked = np.where(is_peak, inner, -np.inf)
    if ranked.shape[1] > MAX_PEAKS:
        top = np.argpartition(-ranked, MAX_PEAKS - 1, axis=1)[:, :MAX_PEAKS]
        keep = np.zeros_like(is_peak)
        np.put_along_axis(keep, top, True, axis=1)
        is_peak &= keep
    frame, k = np.nonzero(is_peak)
    k = k + 1
    left, mid, right = db[frame, k - 1], db[frame, k], db[frame, k + 1]
    denom = left - 2.0 * mid + right
    delta = np.where(denom != 0, 0.5 * (left - right) / np.where(denom != 0, denom, 1.0), 0.0)
    freq = (k + delta) * SAMPLE_RATE / N_FFT
    amp = 10.0 ** ((mid - 0.25 * (left - right) * delta) / 20.0)
    out = np.zeros(mag.shape[0] * n_bins)
    offsets = np.arange(-int(_SPREAD / CENTS_STEP), int(_SPREAD / CENTS_STEP) + 1)
    for h in range(1, HARMONICS + 1):
        pos = 1200.0 * np.log2(freq / (h * FMIN)) / CENTS_STEP  # candidate index (fractional) of f_p / h
        base = np.round(pos).astype(np.int64)
        cand = base[:, None] + offsets[None, :]
        dist = np.abs(cand - pos[:, None]) * CENTS_STEP
        ok = (cand >= 0) & (cand < n_bins) & (dist < _SPREAD)
        w = amp[:, None] * ALPHA ** (h - 1) * np.cos(0.5 * np.pi * dist / _SPREAD) ** 2
        idx = frame[:, None] * n_bins + cand
        out += np.bincount(idx[ok], weights=w[ok], minlength=out.shape[0])
    return out.reshape(mag.shape[0], n_bins)


def _vertex(salience: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Parabolic offset (in grid steps, |δ| ≤ ½) of the maximum around ``best``."""
    rows = np.arange(len(best))
    inner = (best > 0) & (best < salience.shape[1] - 1)
    left = salience[rows, np.clip(best - 1, 0, None)]
    mid = salience[rows, best]
    right = salience[rows, np.clip(best + 1, None, salience.shape[1] - 1)]
    denom = left - 2.0 * mid + right
    delta = np.where(inner & (denom < 0), 0.5 * (left - right) / np.where(denom < 0, denom, -1.0), 0.0)
    return np.clip(delta, -0.5, 0.5)


class PitchAccuracy(ClipMeanMetric):
    """mir_eval raw pitch accuracy (main), raw chroma accuracy and overall accuracy of the
    :func:`track_pitch` f0 of each generated clip against the prompt's ground-truth melody.

    The truth is the ``.npz`` named by the manifest's ``truth`` field (``melody_times`` in s,
    ``melody_hz`` with 0 = unvoiced). ``update(times, f0_hz, truth_times, truth_hz, clip_id)``
    scores one track given as arrays.
    """

    needs_reference = False
    higher_is_better = True
    protocol_version = "harmonic-salience-1"
    components = ("", "raw_chroma", "overall")

    def settings(self) -> dict[str, Any]:
        return {"tracker": "harmonic-summation salience (Melodia-style), argmax per frame", "sample_rate": SAMPLE_RATE,
                "hop_s": HOP / SAMPLE_RATE, "n_fft": N_FFT, "fmin_hz": FMIN, "fmax_hz": FMAX, "harmonics": HARMONICS,
                "alpha": ALPHA, "voicing_salience": VOICING_SALIENCE, "voicing_rms_db": VOICING_RMS_DB,
                "scores": "mir_eval.melody: estimate resampled to the truth times, 50 cents", **self.ci_settings()}

    def update(self, times: np.ndarray, f0_hz: np.ndarray, truth_times: np.ndarray, truth_hz: np.ndarray,
               clip_id: str) -> None:
        s = melody_scores(truth_times, truth_hz, times, f0_hz)
        self.add(clip_id, value=s["raw_pitch"], raw_chroma=s["raw_chroma"], overall=s["overall"])

    def feed(self, item: ScoringItem) -> None:
        if item.generated is None:
            return
        if item.truth is None:
            raise MetricError(f"{self.name}: clip {item.clip_id!r} has no ground-truth melody (manifest field 'truth')")
        try:
            with np.load(item.truth) as truth:
                ref_t, ref_f = np.asarray(truth["melody_times"], float), np.asarray(truth["melody_hz"], float)
        except (OSError, KeyError, ValueError) as e:
            raise MetricError(f"{item.truth}: unreadable ground truth, need melody_times and melody_hz ({e})") from None
        track = track_pitch(item.generated.mono(SAMPLE_RATE), SAMPLE_RATE)
        self.update(track.times, track.f0_hz, ref_t, ref_f, item.clip_id)
