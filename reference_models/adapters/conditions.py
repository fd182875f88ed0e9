"""Time-varying control conditions on a model's latent frame grid, from audio and from a
corpus clip's ground truth (``truth/<id>.npz``, :mod:`t2mbench.bench.corpus.truth`).

Grid: latent frame ``l`` (``l < L``) covers samples ``[l·hop, (l+1)·hop)`` with ``hop`` the
VAE's downsampling ratio (512 samples at 16 kHz = 31.25 frames/s for ``tiny``; 2048 at
44.1 kHz = 21.53 frames/s for SAO-1.0); every feature below is read at the frame centre
``(l + ½)·hop / sample_rate`` seconds.

**Melody** (MuseControlLite's "mono" melody condition, ``utils/extract_conditions.py``
``compute_melody``): each channel is high-passed (2nd-order Butterworth biquad at 261.6 Hz,
causal, as upstream's ``highpass_biquad``), its constant-Q magnitude over 128 semitone bins
(MIDI 0..127, 12 bins per octave, f_k = 440·2^((k−69)/12)) is taken at each frame, the 4
largest bins per channel are kept and the union over channels is a multi-hot ``[128, L]``
(up to 8 ones per frame for stereo). Ranking by magnitude equals upstream's ranking of the
dB-relative-to-max values. Decisions (deviations, stated):

- the constant-Q transform is computed with spectral kernels (Brown & Puckette 1992): bin k is
  the inner product of the frame with a Hann-windowed complex exponential of Q·sr/f_k samples
  (Q = 1/(2^(1/12) − 1) ≈ 16.8), capped at ``CQT_MAX_WINDOW_S`` = 0.5 s (so bins below
  ≈ 34 Hz, far under the 261.6-Hz high-pass, have a coarser resolution than librosa's
  multirate CQT); bins at or above Nyquist are zero. This is a constant-Q magnitude, not
  librosa's ``cqt`` bit for bit;
- frames whose largest bin is below −80 dB of the clip's largest bin (silence, where
  upstream's ``top_db=80`` clamp makes all bins tie and ``topk`` picks arbitrary ones) get no
  bins.

The melody ground truth is the corpus's top voice (``melody_midi`` on its 100-Hz grid, read at
the nearest frame): a one-hot ``[128, L]`` (no bin where nothing sounds).

**Rhythm** (MuseControlLite uses madmom's ``RNNDownBeatProcessor``; madmom does not install
here — it needs Cython builds against old numpy — and its RNN weights are not in this
repository). Instead an offline beat tracker in numpy: a log-mel spectral-flux onset
envelope at 100 frames/s (mono, n_fft 1024, hop sr/100, 64 Slaney mel bands,
log(1 + 100·mel), half-wave-rectified first difference summed over bands), a tempo from its
autocorrelation weighted by a log-normal prior around 120 BPM (σ = 1 octave, 40–240 BPM),
and Ellis' (2007) dynamic-programming beat tracker (tightness 100). Downbeats: the bar length
(3 or 4 beats) and phase whose beats carry the largest low-band (< 200 Hz) onset strength.
Chosen because it is deterministic, has no weights and no dependency beyond numpy, and its
beats are what the rhythm-F1 metric scores; unlike madmom's activations its output is binary
(a frame is 1 where a beat falls in it). Measured against the corpus truth (rhythm F1, 70 ms) on the first
96 clips of ``t2mbench corpus build --clips 320 --seconds 5 --seed 0`` at 16 kHz: mean 0.724 (median 0.928),
librosa 0.11's ``beat.beat_track`` 0.398 (median 0.358) on the same clips
(``tools/fixtures/compare_beat_trackers.py``). The rhythm condition is ``[2, L]`` = (beat, downbeat)
indicator per latent frame; the ground truth fills the beat row from ``beat_times`` (the
corpus stores no downbeats, so its downbeat row is zeros).

**Dynamics** (MuseControlLite ``compute_dynamics``): mono mix clamped to ±1, |STFT| with
n_fft 1024 and hop sr/100 (100 frames/s), a 64-band mel filterbank up to 8 kHz (Slaney),
energy E = Σ mel², level 10·log10(E / E_max) floored at −80 dB, then a Savitzky–Golay filter
of polyorder 1 over ≈1 s (101 frames: a centred moving average), read at the latent frame
centres by linear interpolation ``[1, L]``. Upstream converts the energy with
``amplitude_to_db`` (20·log10, doubling every level); decibels of energy are used here, which
changes the scale by 2 and the −80 dB floor, not the correlation above the floor. The ground
truth smooths the corpus's 50-ms RMS dBFS curve with the same filter.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, lfilter, savgol_filter

from t2mbench.core.dsp.chroma import power_spectrogram
from t2mbench.core.dsp.filterbanks import mel_filterbank

MELODY_BINS = 128
TOP_K = 4
HIGHPASS_HZ = 261.6
CQT_MAX_WINDOW_S = 0.5
SILENCE_DB = -80.0
ONSET_FPS = 100
DYNAMICS_SMOOTH_S = 1.0
BEAT_TOLERANCE_S = 0.07
_Q = 1.0 / (2.0 ** (1.0 / 12.0) - 1.0)


def frame_centres(frames: int, hop: int, sample_rate: int) -> np.ndarray:
    """Centre times (s) of latent frames ``0..frames−1``: ``(l + ½)·hop / sample_rate``."""
    return (np.arange(frames) + 0.5) * hop / sample_rate


def _channels(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    return x[None] if x.ndim == 1 else x


@lru_cache(maxsize=4)
def _cqt_kernels(sample_rate: int) -> tuple[np.ndarray, int]:
    """Frequency-domain constant-Q kernels ``[128, n_fft/2 + 1]`` (complex, conjugated) and n_fft."""
    n_fft = 1 << int(np.ceil(np.log2(CQT_MAX_WINDOW_S * sample_rate)))
    kernels = np.zeros((MELODY_BINS, n_fft // 2 + 1), dtype=np.complex128)
    for k in range(MELODY_BINS):
        f = 440.0 * 2.0 ** ((k - 69) / 12.0)
        if f >= sample_rate / 2:
            continue
        n = min(int(np.ceil(_Q * sample_rate / f)), n_fft)
        t = np.arange(n) - (n - 1) / 2
        atom = np.hanning(n) * np.exp(2j * np.pi * f * t / sample_rate) / n
        frame = np.zeros(n_fft, dtype=np.complex128)
        frame[(n_fft - n) // 2 : (n_fft - n) // 2 + n] = atom
        kernels[k] = np.conj(np.fft.fft(frame)[: n_fft // 2 + 1])
    return kernels, n_fft


def cqt_magnitude(mono: np.ndarray, sample_rate: int, hop: int, frames: int) -> np.ndarray:
    """Constant-Q magnitude ``[128, frames]`` of mono ``[T]`` at the latent frame centres (zero padding)."""
    kernels, n_fft = _cqt_kernels(sample_rate)
    y = np.pad(np.asarray(mono, dtype=np.float64), (n_fft // 2, n_fft // 2 + frames * hop))
    starts = (np.arange(frames) * hop + hop // 2)
    spec = np.fft.rfft(np.lib.stride_tricks.sliding_window_view(y, n_fft)[starts], axis=-1)
    # inner product with the real-signal half spectrum: bins 1..N/2−1 count twice
    weights = np.full(n_fft // 2 + 1, 2.0)
    weights[[0, -1]] = 1.0
    return np.abs((spec * weights) @ kernels.T / n_fft).T


def melody_condition(audio: np.ndarray, sample_rate: int, hop: int, frames: int) -> np.ndarray:
    """Top-4 constant-Q multi-hot ``[128, frames]`` float32 of ``[C, T]`` (or ``[T]``) audio (see module doc)."""
    b, a = butter(2, HIGHPASS_HZ / (0.5 * sample_rate), btype="high")
    out = np.zeros((MELODY_BINS, frames), dtype=np.float32)
    mags = [cqt_magnitude(lfilter(b, a, ch), sample_rate, hop, frames) for ch in _channels(audio)]
    peak = max(float(m.max()) for m in mags)
    floor = peak * 10.0 ** (SILENCE_DB / 20.0)
    for m in mags:
        top = np.argsort(-m, axis=0, kind="stable")[:TOP_K]
        voiced = m.max(axis=0) > floor
        cols = np.broadcast_to(np.arange(frames), top.shape)
        out[top[:, voiced], cols[:, voiced]] = 1.0
    return out


def _truth_at(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    idx = np.clip(np.round(np.interp(at, times, np.arange(len(times)))).astype(int), 0, len(times) - 1)
    return values[idx]


def melody_truth(truth: dict, hop: int, sample_rate: int, frames: int) -> np.ndarray:
    """One-hot ``[128, frames]`` float32 of the corpus top voice at the latent frame centres."""
    midi = _truth_at(truth["melody_times"], truth["melody_midi"], frame_centres(frames, hop, sample_rate))
    out = np.zeros((MELODY_BINS, frames), dtype=np.float32)
    voiced = midi >= 0
    out[midi[voiced], np.nonzero(voiced)[0]] = 1.0
    return out


def _mel_power(mono: np.ndarray, sample_rate: int, fmax: float) -> np.ndarray:
    """64-band Slaney mel power ``[64, F]`` at 100 frames/s (n_fft 1024, hop sr/100)."""
    hop = sample_rate // ONSET_FPS
    spec = power_spectrogram(mono, n_fft=1024, hop_length=hop)
    return mel_filterbank(sample_rate, 1024, 64, 0.0, fmax) @ np.sqrt(spec)


def onset_envelope(mono: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectral flux at 100 frames/s: ``(full-band [F], low-band < 200 Hz [F])``, each ≥ 0."""
    mel = np.log1p(100.0 * _mel_power(mono, sample_rate, sample_rate / 2))
    flux = np.maximum(np.diff(mel, axis=1, prepend=mel[:, :1]), 0.0)
    freqs = mel_filterbank(sample_rate, 1024, 64, 0.0, sample_rate / 2).argmax(axis=1) * sample_rate / 1024
    return flux.sum(axis=0), flux[freqs < 200.0].sum(axis=0)


def track_beats(mono: np.ndarray, sample_rate: int, tightness: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """``(beat times [B] s, downbeat times [D] s)`` of mono audio (see module doc)."""
    onset, low = onset_envelope(np.clip(mono, -1.0, 1.0), sample_rate)
    if onset.max() <= 0:
        return np.zeros(0), np.zeros(0)
    o = onset / onset.std() if onset.std() > 0 else onset
    lags = np.arange(int(ONSET_FPS * 60 / 240), int(ONSET_FPS * 60 / 40) + 1)
    lags = lags[lags < len(o)]
    if len(lags) == 0:
        return np.zeros(0), np.zeros(0)
    ac = np.array([np.dot(o[:-lag], o[lag:]) / (len(o) - lag) for lag in lags])
    prior = np.exp(-0.5 * np.log2(60.0 * ONSET_FPS / lags / 120.0) ** 2)
    period = float(lags[np.argmax(ac * prior)])
    score, back = o.copy(), np.full(len(o), -1)
    window = np.arange(-int(round(2 * period)), -int(round(period / 2)) + 1)
    cost = -tightness * np.log(-window / period) ** 2
    for t in range(len(o)):
        prev = t + window
        ok = prev >= 0
        if ok.any():
            cand = score[prev[ok]] + cost[ok]
            j = int(np.argmax(cand))
            if cand[j] > 0:
                score[t], back[t] = o[t] + cand[j], prev[ok][j]
    # the last beat: the best score in the final period, then back-track
    tail = np.arange(max(0, len(o) - int(period)), len(o))
    beats = [int(tail[np.argmax(score[tail])])]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    beats = np.array(beats[::-1])
    best, down = -1.0, beats[:0]
    for bar in (3, 4):
        for phase in range(min(bar, len(beats))):
            strength = float(low[beats[phase::bar]].mean())
            if strength > best:
                best, down = strength, beats[phase::bar]
    return beats / ONSET_FPS, down / ONSET_FPS


def _indicator(times: np.ndarray, hop: int, sample_rate: int, frames: int) -> np.ndarray:
    out = np.zeros(frames, dtype=np.float32)
    idx = np.floor(np.asarray(times) * sample_rate / hop).astype(int)
    out[idx[(idx >= 0) & (idx < frames)]] = 1.0
    return out


def rhythm_condition(audio: np.ndarray, sample_rate: int, hop: int, frames: int) -> np.ndarray:
    """(beat, downbeat) indicators ``[2, frames]`` float32 from the tracked beats of the mono mix."""
    beats, down = track_beats(_channels(audio).mean(axis=0), sample_rate)
    return np.stack([_indicator(beats, hop, sample_rate, frames), _indicator(down, hop, sample_rate, frames)])


def rhythm_truth(truth: dict, hop: int, sample_rate: int, frames: int) -> np.ndarray:
    """(beat, downbeat = 0) indicators ``[2, frames]`` float32 from the corpus ``beat_times``."""
    return np.stack([_indicator(truth["beat_times"], hop, sample_rate, frames), np.zeros(frames, np.float32)])


def beat_f1(estimated: np.ndarray, reference: np.ndarray, tolerance: float = BEAT_TOLERANCE_S) -> float:
    """MuseControlLite's rhythm F1: greedy one-to-one matching of beat times (s) with
    |Δ| < ``tolerance``, F1 of precision and recall; 0 when either set is empty."""
    est, ref = sorted(np.asarray(estimated, float).tolist()), np.asarray(reference, float)
    if len(est) == 0 or len(ref) == 0:
        return 0.0
    used = np.zeros(len(ref), dtype=bool)
    hits = 0
    for e in est:
        d = np.where(used, np.inf, np.abs(ref - e))
        j = int(np.argmin(d))
        if d[j] < tolerance:
            used[j], hits = True, hits + 1
    if hits == 0:
        return 0.0
    p, r = hits / len(est), hits / len(ref)
    return 2 * p * r / (p + r)


def _smooth(db: np.ndarray, fps: float) -> np.ndarray:
    window = min(int(round(DYNAMICS_SMOOTH_S * fps)) | 1, len(db) - 1 + len(db) % 2)
    return savgol_filter(db, window, 1) if window >= 3 else db


def dynamics_curve(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``(times [F] s, smoothed level [F] dB)`` at 100 frames/s (see module doc)."""
    mono = np.clip(_channels(audio).mean(axis=0), -1.0, 1.0)
    energy = (_mel_power(mono, sample_rate, min(8000.0, sample_rate / 2)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore"):
        db = np.maximum(10.0 * np.log10(energy / max(energy.max(), 1e-30)), SILENCE_DB)
    return np.arange(len(db)) / ONSET_FPS, _smooth(db, ONSET_FPS)


def dynamics_condition(audio: np.ndarray, sample_rate: int, hop: int, frames: int) -> np.ndarray:
    """Smoothed level in dB at the latent frame centres ``[1, frames]`` float32."""
    times, db = dynamics_curve(audio, sample_rate)
    return np.interp(frame_centres(frames, hop, sample_rate), times, db)[None].astype(np.float32)


def dynamics_truth(truth: dict, hop: int, sample_rate: int, frames: int) -> np.ndarray:
    """The corpus loudness curve (50-ms RMS dBFS) smoothed like :func:`dynamics_curve`, ``[1, frames]``."""
    times = np.asarray(truth["loudness_times"])
    fps = 1.0 / float(times[1] - times[0]) if len(times) > 1 else 1.0
    db = _smooth(np.asarray(truth["loudness_db"], float), fps)
    return np.interp(frame_centres(frames, hop, sample_rate), times, db)[None].astype(np.float32)


EXTRACTORS = {"melody": melody_condition, "rhythm": rhythm_condition, "dynamics": dynamics_condition}
TRUTHS = {"melody": melody_truth, "rhythm": rhythm_truth, "dynamics": dynamics_truth}
CHANNELS = {"melody": MELODY_BINS, "rhythm": 2, "dynamics": 1}
