import numpy as np
import pytest
import torch

from t2mbench.metrics.dsp.stft import stft_magnitude
from t2mbench.metrics.spectral import _magnitude


def test_stft_magnitude_is_bit_equal_to_the_spectral_metrics_magnitude():
    """One STFT magnitude: the training losses' (differentiable, any device) gives, on float32
    CPU input, the very bits of the ``stft``/``mel`` metrics' numpy path."""
    x = np.random.default_rng(0).standard_normal((3, 8000)).astype(np.float32)
    ours = stft_magnitude(torch.from_numpy(x), 1024, 256).numpy()
    np.testing.assert_array_equal(ours, _magnitude(x, 1024, 256, 1024))


def test_stft_magnitude_keeps_the_gradient_and_the_floor():
    x = torch.zeros(1, 2048, requires_grad=True)
    mag = stft_magnitude(x, 256, 64)
    assert mag.min().item() == pytest.approx(1e-4)
    mag.sum().backward()
    assert torch.isfinite(x.grad).all()
