"""Mel filterbanks as the upstream front ends build them, in numpy float64.

- :func:`mel_filterbank` with ``scale="slaney", norm="slaney"`` is ``librosa.filters.mel``'s
  default (OpenL3 with kapre 0.3.7, auraloss MelSTFTLoss, LAION-CLAP's torchlibrosa ``melW``);
  ``scale="htk", norm=None`` is ``torchaudio.functional.melscale_fbanks`` (CLAP fusion path).
- :func:`kaldi_mel_banks` is ``torchaudio.compliance.kaldi.get_mel_banks`` without VTLN warping
  (PaSST): triangles linear in the 1127·ln(1 + f/700) mel scale, peak 1, no area norm.

Callers cast to float32 where the upstream code keeps float32; differences are at float32
rounding (~1e-7 relative).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MelScale = Literal["slaney", "htk"]

_F_SP = 200.0 / 3.0  # Slaney: linear part, Hz per mel
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(f: np.ndarray | float, scale: MelScale = "slaney") -> np.ndarray:
    """Hz to mel: HTK ``2595·log10(1 + f/700)`` or Slaney (linear below 1 kHz, log above)."""
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    lin = f / _F_SP
    return np.where(f >= _MIN_LOG_HZ, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-300) / _MIN_LOG_HZ) / _LOGSTEP, lin)


def mel_to_hz(m: np.ndarray | float, scale: MelScale = "slaney") -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def mel_filterbank(
    sample_rate: float,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    *,
    scale: MelScale = "slaney",
    norm: Literal["slaney"] | None = "slaney",
    n_freqs: int | None = None,
) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_freqs]`` (float64) over FFT bins ``linspace(0, sr/2, n_freqs)``.

    Args:
        sample_rate: Hz. ``n_fft``: FFT size; ``n_freqs`` defaults to ``n_fft // 2 + 1``.
        fmin, fmax: band edges in Hz (``fmax`` defaults to ``sample_rate / 2``).
        scale: ``"slaney"`` or ``"htk"`` mel scale.
        norm: ``"slaney"`` multiplies each triangle by ``2 / (f_{m+2} - f_m)`` (area norm); ``None`` keeps peak 1.
    """
    fmax = sample_rate / 2.0 if fmax is None else fmax
    n_freqs = n_fft // 2 + 1 if n_freqs is None else n_freqs
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_freqs)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2), scale)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"unknown mel norm {norm!r}; use 'slaney' or None")
    return weights


def kaldi_mel_banks(n_mels: int, n_fft: int, sample_rate: float, fmin: float, fmax: float) -> np.ndarray:
    """Kaldi mel banks ``[n_mels, n_fft // 2]`` (float64), as torchaudio's ``get_mel_banks``
    with VTLN warp factor 1 (no warping). ``fmax <= 0`` counts from Nyquist, as Kaldi does."""
    if fmax <= 0.0:
        fmax += sample_rate / 2.0

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    lo, hi = mel(fmin), mel(fmax)
    delta = (hi - lo) / (n_mels + 1)
    j = np.arange(n_mels, dtype=np.float64)[:, None]
    left, center, right = lo + j * delta, lo + (j + 1) * delta, lo + (j + 2) * delta
    m = mel(sample_rate / n_fft * np.arange(n_fft // 2, dtype=np.float64))[None, :]
    up = (m - left) / (center - left)
    down = (right - m) / (right - center)
    return np.maximum(0.0, np.minimum(up, down))
