import numpy as np
import pytest
import torch

from t2mbench.core.dsp.stft import stft_magnitude


def reference(x: np.ndarray, n_fft: int, hop: int, win_length: int, eps: float = 1e-8) -> np.ndarray:
    """The same magnitude in plain numpy, float64: reflect-pad n_fft/2, periodic Hann of
    win_length centred in n_fft, frames every hop, |rfft|² floored at eps, square root."""
    pad = n_fft // 2
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad)), mode="reflect")
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    window[left : left + win_length] = hann
    frames = 1 + (xp.shape[1] - n_fft) // hop
    idx = np.arange(frames)[:, None] * hop + np.arange(n_fft)[None, :]
    spec = np.fft.rfft(xp[:, idx] * window, axis=-1)  # [N, frames, F]
    return np.sqrt(np.maximum(np.abs(spec) ** 2, eps)).transpose(0, 2, 1)


@pytest.mark.parametrize("n_fft, hop, win", [(1024, 256, 1024), (512, 128, 256), (2048, 512, 2048)])
def test_stft_magnitude_equals_a_plain_numpy_stft(n_fft, hop, win):
    x = np.random.default_rng(0).standard_normal((3, 8000)).astype(np.float32)
    ours = stft_magnitude(torch.from_numpy(x), n_fft, hop, win_length=win).numpy()
    want = reference(x, n_fft, hop, win)
    assert ours.shape == want.shape == (3, n_fft // 2 + 1, 1 + 8000 // hop)
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_stft_magnitude_keeps_the_gradient_and_the_floor():
    x = torch.zeros(1, 2048, requires_grad=True)
    mag = stft_magnitude(x, 256, 64)
    assert mag.min().item() == pytest.approx(1e-4)
    mag.sum().backward()
    assert torch.isfinite(x.grad).all()
