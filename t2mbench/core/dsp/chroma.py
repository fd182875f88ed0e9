"""librosa 0.10's ``chroma_stft`` with per-file tuning estimation, re-implemented in numpy.

``chroma_stft(y, sr, n_fft, hop_length, win_length)`` with the other defaults:

1. power spectrogram S = |STFT|² (periodic Hann of ``win_length`` centred in ``n_fft``; frames
   centred with **zero** padding of n_fft/2 on both sides; 1 + T // hop frames; float64);
2. tuning = ``estimate_tuning(S=S, sr, bins_per_octave=12)``:
   - ``piptrack`` on S itself (here a *power* spectrogram) with fmin 150, fmax 4000 Hz,
     threshold 0.1: bins that are local maxima along frequency (x[k] > x[k−1] and
     x[k] ≥ x[k+1]) of S·[S > 0.1·max_k S] inside [fmin, fmax) give a pitch
     (k + δ)·sr/n_fft with the parabolic shift δ = −b/a (a = S[k+1] + S[k−1] − 2S[k],
     b = (S[k+1] − S[k−1])/2; δ = 0 when |b| ≥ |a|) and a magnitude S[k] + ½·g[k]·δ, where
     g is ``np.gradient`` along frequency;
   - keep pitches whose magnitude is ≥ the median magnitude of all pitched bins;
   - the residual of 12·log2(f / 27.5 Hz) modulo 1, wrapped to [−0.5, 0.5), is histogrammed
     in 100 bins of 0.01 over [−0.5, 0.5]; the tuning is the left edge of the fullest bin
     (0 when no pitch was found);
3. ``filters.chroma(sr, n_fft, tuning)`` (Ellis' Gaussian bumps, float32): bin frequencies
   k·sr/n_fft (k ≥ 1) in chroma-bin units 12·log2(f / (A440·2^(tuning/12)/16)), bin 0 set 1.5
   octaves below bin 1; bump widths max(Δbins, 1); distance to each of the 12 classes wrapped
   to ±6; weights exp(−½(2D/width)²), each column L2-normalised, times an octave window
   exp(−½((bins/12 − 5)/2)²), rolled so row 0 is C, cut to n_fft/2 + 1 columns;
4. chroma = filters @ S, then each frame divided by its maximum (frames whose maximum is below
   the smallest normal float64 are left unscaled).
"""

from __future__ import annotations

import numpy as np

A440 = 440.0
_TINY64 = np.finfo(np.float64).tiny
_FRAME_CHUNK = 512


def power_spectrogram(
    y: np.ndarray, n_fft: int = 2048, hop_length: int = 512, win_length: int | None = None
) -> np.ndarray:
    """|STFT|² of mono ``y`` [T] (float64), librosa conventions: ``[1 + n_fft/2, 1 + T // hop]``."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal [T], got shape {y.shape}")
    win_length = n_fft if win_length is None else win_length
    window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    window[left : left + win_length] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    padded = np.pad(y, n_fft // 2)
    n_frames = 1 + (padded.shape[0] - n_fft) // hop_length
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length][:n_frames]
    out = np.empty((n_fft // 2 + 1, n_frames))
    for s in range(0, n_frames, _FRAME_CHUNK):
        spec = np.fft.rfft(frames[s : s + _FRAME_CHUNK] * window, axis=-1)
        out[:, s : s + _FRAME_CHUNK] = (np.abs(spec) ** 2).T
    return out


def estimate_tuning(
    S: np.ndarray, sr: float, *, n_fft: int = 2048, fmin: float = 150.0, fmax: float = 4000.0, threshold: float = 0.1,
    resolution: float = 0.01, bins_per_octave: int = 12,
) -> float:
    """librosa ``estimate_tuning(S=S, sr=sr)``: tuning offset in fractions of a bin, in [−0.5, 0.5)."""
    S = np.abs(np.asarray(S, dtype=np.float64))
    freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    grad = np.gradient(S, axis=0)
    a = np.zeros_like(S)
    b = np.zeros_like(S)
    a[1:-1] = S[2:] + S[:-2] - 2.0 * S[1:-1]
    b[1:-1] = (S[2:] - S[:-2]) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    masked = S * (S > threshold * S.max(axis=0, keepdims=True))
    peak = np.zeros(S.shape, dtype=bool)
    peak[1:-1] = (masked[1:-1] > masked[:-2]) & (masked[1:-1] >= masked[2:])
    peak[-1] = masked[-1] > masked[-2]
    band = (max(fmin, 0.0) <= freqs) & (freqs < min(fmax, sr / 2.0))
    k, t = np.nonzero(peak & band[:, None])
    pitches = (k + shift[k, t]) * float(sr) / n_fft
    mags = S[k, t] + 0.5 * grad[k, t] * shift[k, t]
    pitched = pitches > 0
    if not pitched.any():
        return 0.0
    keep = pitches[(mags >= np.median(mags[pitched])) & pitched]
    keep = keep[keep > 0]
    if keep.size == 0:
        return 0.0
    residual = np.mod(bins_per_octave * np.log2(keep / (A440 / 16.0)), 1.0)
    residual[residual >= 0.5] -= 1.0
    counts, edges = np.histogram(residual, np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1))
    return float(edges[np.argmax(counts)])


def chroma_filters(sr: float, n_fft: int, tuning: float = 0.0, n_chroma: int = 12) -> np.ndarray:
    """librosa ``filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning)`` with its defaults (ctroct 5,
    octwidth 2, L2 norm, base C), float32 ``[n_chroma, 1 + n_fft/2]``."""
    freqs = np.linspace(0.0, sr, n_fft, endpoint=False)[1:]
    a440 = A440 * 2.0 ** (tuning / n_chroma)
    bins = n_chroma * np.log2(freqs / (a440 / 16.0))
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    d = np.subtract.outer(bins, np.arange(n_chroma, dtype=np.float64)).T
    half = np.round(float(n_chroma) / 2)
    d = np.remainder(d + half + 10 * n_chroma, n_chroma) - half
    w = np.exp(-0.5 * (2.0 * d / widths[None, :]) ** 2)
    norms = np.sqrt(np.sum(w**2, axis=0, keepdims=True))
    w = w / np.where(norms < _TINY64, 1.0, norms)
    w = w * np.exp(-0.5 * ((bins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    w = np.roll(w, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(w[:, : int(1 + n_fft / 2)], dtype=np.float32)


def chroma_stft(
    y: np.ndarray, sr: float, *, n_fft: int = 2048, hop_length: int = 512, win_length: int | None = None
) -> np.ndarray:
    """librosa ``feature.chroma_stft(y=y, sr=sr, ...)`` (tuning estimated): float64 ``[12, 1 + T // hop]``."""
    S = power_spectrogram(y, n_fft, hop_length, win_length)
    tuning = estimate_tuning(S, sr, n_fft=n_fft)
    raw = chroma_filters(sr, n_fft, tuning).astype(np.float64) @ S
    peak = raw.max(axis=0, keepdims=True)
    return raw / np.where(peak < _TINY64, 1.0, peak)
