"""SI-SDR against auraloss 0.4.0 ``SISDRLoss`` (negated) and the reference definition."""

from pathlib import Path

import numpy as np
import pytest

from t2mbench.metrics.registry import get_metric
from t2mbench.metrics.sisdr import si_sdr

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "metrics" / "spectral.npz")


@pytest.mark.parametrize("tag", ["", "mono_"])
def test_matches_auraloss_and_sat_per_clip_and_per_batch(tag):
    est, tgt = FIX[f"{tag}estimate"], FIX[f"{tag}target"]
    got = si_sdr(est, tgt)
    np.testing.assert_allclose(-got, FIX[f"aur_{tag}sisdr_item"], atol=1e-4)  # dB; auraloss is float32
    np.testing.assert_allclose(-got, FIX[f"sat_{tag}sisdr_item"], atol=1e-4)
    assert -got.mean() == pytest.approx(float(FIX[f"aur_{tag}sisdr_batch"]), abs=1e-4)


def test_reference_definition_and_scale_invariance():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1000))
    e = 0.1 * rng.standard_normal((1, 1000))
    xz, ez = x - x.mean(), (x + e) - (x + e).mean()
    s = (ez @ xz.T) / (xz @ xz.T) * xz
    expected = 10 * np.log10(np.sum(s**2) / np.sum((ez - s) ** 2))
    assert si_sdr(x + e, x)[0] == pytest.approx(float(expected), abs=1e-6)
    assert si_sdr(3.0 * (x + e), x)[0] == pytest.approx(si_sdr(x + e, x)[0], abs=1e-7)  # up to the 1e-8 eps


def test_silent_reference_gives_minus_80_db():
    assert si_sdr(np.ones((1, 100)), np.zeros((1, 100)))[0] == pytest.approx(-80.0)


def test_metric_is_higher_is_better_mean_over_clips():
    m = get_metric("sisdr", ci_resamples=0)
    assert m.higher_is_better
    m.update(FIX["estimate"], FIX["target"], ["a", "b", "c"])
    assert m.compute().value == pytest.approx(-float(FIX["aur_sisdr_batch"]), abs=1e-4)
