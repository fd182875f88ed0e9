"""torchaudio's default resampler, re-implemented: a Hann-windowed sinc polyphase filter.

``torchaudio.transforms.Resample(orig, new)`` / ``torchaudio.functional.resample`` with their
defaults (``resampling_method="sinc_interp_hann"``, ``lowpass_filter_width=6``,
``rolloff=0.99``). MuseControlLite resamples to 44.1 kHz this way before its melody chroma, and
audioldm_eval to 16 kHz.

With g = gcd(orig, new), o = orig/g, n = new/g, cutoff f_c = min(o, n)·rolloff and
width w = ceil(6·o / f_c), output phase j (0 ≤ j < n) uses taps k = −w … w + o − 1:

    t = clamp(f_c·(k/o − j/n), −6, 6),   h_j[k] = sinc(π t) · cos²(π t / 12) · f_c / o

(j/n is formed in float32 and the rest in float64, as torchaudio does; the kernel is then
cast to float32). The input is zero-padded by w on the left and w + o on the right, filtered
with stride o, interleaved, and cut to ceil(n·T / o) samples.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


@lru_cache(maxsize=16)
def hann_sinc_kernel(
    orig: int, new: int, lowpass_filter_width: int = LOWPASS_FILTER_WIDTH, rolloff: float = ROLLOFF
) -> tuple[torch.Tensor, int]:
    """The float32 polyphase kernel ``[n, 1, 2w + o]`` and the width ``w`` for ``orig → new`` Hz."""
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    cutoff = min(o, n) * rolloff
    width = math.ceil(lowpass_filter_width * o / cutoff)
    taps = torch.arange(-width, width + o, dtype=torch.float64)[None, None] / o
    phase = torch.arange(0, -n, -1, dtype=torch.float32)[:, None, None] / n
    t = ((phase + taps) * cutoff).clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return (sinc * (window * (cutoff / o))).to(torch.float32), width


def resample_hann(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample float ``[C, T]`` from ``sr_in`` to ``sr_out`` Hz → float32 ``[C, ceil(T·sr_out/sr_in)]``."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    if not all(isinstance(r, (int, np.integer)) and r > 0 for r in (sr_in, sr_out)):
        raise ValueError(f"sample rates must be positive integers (Hz), got {sr_in!r} and {sr_out!r}")
    kernel, width = hann_sinc_kernel(int(sr_in), int(sr_out))
    g = math.gcd(int(sr_in), int(sr_out))
    o, n = sr_in // g, sr_out // g
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    channels, length = x.shape
    padded = torch.nn.functional.pad(x, (width, width + o))[:, None, :]
    with torch.inference_mode():
        y = torch.nn.functional.conv1d(padded, kernel, stride=o)  # [C, n, frames]
    y = y.transpose(1, 2).reshape(channels, -1)[:, : math.ceil(n * length / o)]
    return y.numpy().copy()
