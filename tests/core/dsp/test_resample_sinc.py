"""t2mbench.core.dsp.resample_sinc against resampy 0.2.2 (fixtures from tools/fixtures/make_openl3_resampy.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.openl3_weights import fixture_signal

from t2mbench.core.dsp.resample_sinc import FILTERS, half_window, output_length, resample_sinc

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "openl3"
META = json.loads((FIXTURES / "resampy.json").read_text())
GOLDEN = np.load(FIXTURES / "resampy.npz")


def _input(spec: dict) -> np.ndarray:
    x = fixture_signal(spec["seed"], 1, spec["samples"], spec["sr_orig"])[0].astype(np.float64)
    assert hashlib.sha256(x.tobytes()).hexdigest() == spec["input_sha256"], "fixture signal generator changed"
    return x


@pytest.mark.parametrize("name", sorted(META["cases"]))
def test_matches_resampy(name: str) -> None:
    spec = META["cases"][name]
    y = resample_sinc(_input(spec), spec["sr_orig"], spec["sr_new"], filter=spec["filter"]).numpy()
    assert y.shape == (spec["n_out"],) == (output_length(spec["samples"], spec["sr_orig"], spec["sr_new"]),)
    if f"{name}__index" in GOLDEN:  # long clip: resampy's drifting time register is reproduced
        y = y[GOLDEN[f"{name}__index"]]
    ref = GOLDEN[name]
    # only the summation order differs from resampy's running sum
    assert np.abs(y - ref).max() <= 1e-14 * np.abs(ref).max()


@pytest.mark.parametrize("filt", sorted(FILTERS))
def test_filter_table_is_resampys(filt: str) -> None:
    table = half_window(FILTERS[filt])
    assert len(table) == META[filt]["length"]
    assert FILTERS[filt].precision == META[filt]["precision"] and FILTERS[filt].rolloff == META[filt]["rolloff"]
    np.testing.assert_allclose(table[::64], GOLDEN[f"half_window__{filt}"], rtol=0, atol=1e-15)


def test_batched_channels_and_torch_input() -> None:
    """Leading dimensions are independent channels; torch in, torch out (float64)."""
    spec = META["cases"]["up_44100_48000"]
    x = _input(spec)
    stacked = torch.from_numpy(np.stack([x, -2.0 * x, x[::-1].copy()])).float()
    y = resample_sinc(stacked.reshape(3, 1, -1), 44100, 48000)
    assert y.dtype == torch.float64 and y.shape == (3, 1, spec["n_out"])
    ref = GOLDEN["up_44100_48000"]
    # the float32 cast of the input moves the output by ~1e-7 relative
    np.testing.assert_allclose(y[0, 0].numpy(), ref, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(y[1, 0].numpy(), -2.0 * y[0, 0].numpy(), rtol=1e-12, atol=1e-12)
    single = resample_sinc(stacked[2], 44100, 48000)
    np.testing.assert_array_equal(y[2, 0].numpy(), single.numpy())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros(10), 0, 48000), "sample rates must be positive integers"),
        ((np.zeros(10), 44100.0, 48000), "sample rates must be positive integers"),
        ((np.zeros(1), 48000, 16000), "too short to resample"),
    ],
)
def test_bad_arguments(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resample_sinc(*args)


def test_unknown_filter_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="use one of kaiser_best, kaiser_fast"):
        resample_sinc(np.zeros(100), 44100, 48000, filter="sinc_window")
