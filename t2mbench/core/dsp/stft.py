"""The STFT magnitude shared by the spectral metrics, the VAE's training losses and the evidence plots."""

from __future__ import annotations

import torch


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, eps: float = 1e-8,
                   win_length: int | None = None) -> torch.Tensor:  # fmt: skip
    """``sqrt(max(|STFT|², eps))`` of ``[N, T]`` → ``[N, n_fft // 2 + 1, frames]``, with a
    periodic Hann of ``win_length`` (default ``n_fft``; a shorter one is zero-padded to ``n_fft``
    in the middle), centred frames (reflect padding), as auraloss's STFT losses compute it.

    Differentiable, on ``x``'s device and dtype. The floor keeps ``log`` and the gradient of
    ``sqrt`` finite on silent frames (auraloss's ``eps``)."""
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, win_length, window, center=True, pad_mode="reflect", return_complex=True)
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=eps))
