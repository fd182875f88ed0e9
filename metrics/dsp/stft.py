"""The STFT magnitude shared by the VAE's training losses and the evidence plots."""

from __future__ import annotations

import torch


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, eps: float = 1e-8) -> torch.Tensor:
    """``sqrt(max(|STFT|², eps))`` of ``[N, T]`` with a periodic Hann of ``n_fft``, centred (reflect).

    Differentiable, on ``x``'s device and dtype. The floor keeps ``log`` and the gradient of
    ``sqrt`` finite on silent frames (auraloss's ``eps``)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, n_fft, window, center=True, pad_mode="reflect", return_complex=True)
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=eps))
