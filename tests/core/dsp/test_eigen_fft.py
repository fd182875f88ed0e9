"""t2mbench.core.dsp.eigen_fft against TensorFlow 2.13.1's ``tf.signal.rfft`` / ``tf.signal.stft``
(tests/fixtures/eigen_fft, tools/fixtures/make_eigen_fft.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from t2mbench.core.dsp.eigen_fft import eigen_dft_matrix, eigen_rfft

TF = np.load(Path(__file__).resolve().parents[2] / "fixtures" / "eigen_fft" / "tf_rfft.npz")
UPPER = slice(941, 1025)  # bins above 22.05 kHz at 48 kHz / 2048 points


@pytest.mark.parametrize("case", ["noise", "noise16", "noise256", "frames"])
def test_eigen_rfft_is_tensorflows_bit_for_bit(case: str) -> None:
    ref = TF[f"{case}__rfft"] if case != "frames" else TF["frames__stft"]
    got = eigen_rfft(torch.from_numpy(TF[case])).numpy()
    assert got.dtype == np.complex64 and got.shape == ref.shape
    assert np.array_equal(got, ref)


def test_tensorflows_fft_errs_where_band_limited_audio_is_empty() -> None:
    """Why the module exists: above 22.05 kHz the exact DFT of the frames is ~2e-6, TensorFlow's differs
    from it by ~1e-5 (its rounding), and the linear map (Eigen's twiddles, exact arithmetic) is within
    ~6e-7 of TensorFlow there."""
    x, ref = TF["frames"], TF["frames__stft"]
    exact = np.fft.rfft(x.astype(np.float64))
    m = eigen_dft_matrix(2048).double().numpy()
    linear = x.astype(np.float64) @ (m[:, :1025] + 1j * m[:, 1025:])
    err_exact = np.median(np.abs(ref - exact)[:, UPPER])
    err_linear = np.median(np.abs(ref - linear)[:, UPPER])
    assert np.median(np.abs(exact[:, UPPER])) < 5e-6
    assert 8e-6 < err_exact and err_linear < 1e-6 and err_linear < err_exact / 10
    # everywhere: no worse than float32 rounding of the transform
    assert np.abs(ref - linear).max() < 1e-6 * np.abs(x).sum(axis=1).max()


def test_matrix_is_the_linearisation_of_the_algorithm() -> None:
    x = torch.from_numpy(TF["noise"])
    m = eigen_dft_matrix(2048)
    linear = x.double() @ m.double()
    bits = eigen_rfft(x)
    assert m.shape == (2048, 2050)
    assert torch.allclose(linear[:, :1025], bits.real.double(), atol=5e-5, rtol=0)
    assert torch.allclose(linear[:, 1025:], bits.imag.double(), atol=5e-5, rtol=0)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.zeros(2, 2048, dtype=torch.float64), "float32"),
        (torch.zeros(2, 1000), "power-of-two"),
        (torch.zeros(8), "power-of-two"),
    ],
)
def test_bad_input(x: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eigen_rfft(x)
