import json

import numpy as np
import pytest

from t2mbench.bench.evidence.degradation import (
    CONDITIONS,
    add_noise,
    fd_evaluator,
    is_rising,
    low_pass,
    write_outputs,
)
from t2mbench.core.errors import AudioError
from t2mbench.metrics.frechet import frechet_distance


def _tone(hz, sr=44_100, seconds=2.0):
    t = np.arange(int(sr * seconds)) / sr
    return np.stack([np.sin(2 * np.pi * hz * t), 0.5 * np.sin(2 * np.pi * hz * t)]).astype(np.float32)


def _db(x):
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))


@pytest.mark.parametrize("snr", [40.0, 10.0])
def test_add_noise_sets_the_snr(snr):
    clean = _tone(440.0)
    noisy = add_noise(clean, snr, np.random.default_rng(0))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert _db(clean) - _db(noisy - clean) == pytest.approx(snr, abs=0.05)
    with pytest.raises(AudioError, match="cannot set an SNR for digital silence"):
        add_noise(np.zeros((1, 100), np.float32), snr, np.random.default_rng(0))


def test_low_pass_keeps_the_pass_band_and_removes_the_stop_band():
    middle = slice(4_410, -4_410)  # away from the edges
    kept = low_pass(_tone(500.0), 44_100, 1_000.0)
    assert _db(kept[:, middle]) - _db(_tone(500.0)[:, middle]) == pytest.approx(0.0, abs=0.05)
    gone = low_pass(_tone(4_000.0), 44_100, 1_000.0)  # 3 octaves up: 16th-order roll-off
    assert _db(gone[:, middle]) - _db(_tone(4_000.0)[:, middle]) < -150  # float32 floor, > 280 dB in theory
    with pytest.raises(ValueError, match=r"cut-off 30000.0 Hz must lie between 0 and Nyquist \(22050.0 Hz\)"):
        low_pass(_tone(500.0), 44_100, 30_000.0)


def test_conditions_and_monotonicity():
    assert [c.label for c in CONDITIONS] == [
        "clean", "noise 40 dB SNR", "noise 30 dB SNR", "noise 20 dB SNR", "noise 10 dB SNR",
        "low-pass 8 kHz", "low-pass 4 kHz", "low-pass 2 kHz", "low-pass 1 kHz",
    ]  # fmt: skip
    rows = [{"kind": c.kind, "fd_evaluator": v} for c, v in zip(CONDITIONS, [1, 2, 3, 4, 5, 2, 3, 3, 4])]
    assert is_rising(rows, "noise") and not is_rising(rows, "lowpass")  # 3 -> 3 is not a rise


def test_fd_evaluator_is_the_frechet_distance_of_the_stacked_windows():
    rng = np.random.default_rng(0)
    gen = [rng.normal(size=(9, 4)).astype(np.float32) for _ in range(20)]
    ref = [rng.normal(0.5, 1.0, size=(9, 4)).astype(np.float32) for _ in range(20)]
    expected = frechet_distance(np.concatenate(gen).astype(np.float64), np.concatenate(ref).astype(np.float64))
    assert fd_evaluator(gen, ref) == pytest.approx(expected, rel=1e-9)


def test_write_outputs_writes_json_csv_and_plot(tmp_path):
    rows = [{"condition": c.label, "kind": c.kind, "value": c.value, "fd_evaluator": float(i + 1)}
            for i, c in enumerate(CONDITIONS)]  # fmt: skip
    table = {"reference": {"split": "train", "clips": 4, "windows": 8},
             "evaluated": {"split": "test", "clips": 2, "windows": 4}, "rows": rows,
             "monotonic": {"noise": True, "lowpass": True}}  # fmt: skip
    assert write_outputs(table, tmp_path) == tmp_path / "degradation.json"
    assert json.loads((tmp_path / "degradation.json").read_text()) == table
    csv = (tmp_path / "degradation.csv").read_text().splitlines()
    assert csv[0] == "condition,fd_evaluator" and csv[1] == "clean,1" and len(csv) == len(CONDITIONS) + 1
    assert (tmp_path / "degradation.png").stat().st_size > 0
