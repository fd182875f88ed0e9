"""KL divergence: stable-audio-metrics' torch reduction (golden fixture), the sigmoid variant, errors."""

from pathlib import Path

import numpy as np
import pytest

from t2mbench.metrics.kl import kl_divergence, kl_from_probabilities
from t2mbench.metrics.registry import get_metric

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "metrics" / "kl_clap.npz")


def test_softmax_kl_matches_stable_audio_metrics_per_pair():
    got = kl_divergence(FIX["gen_logits"], FIX["ref_logits"])
    np.testing.assert_allclose(got, FIX["kl"], rtol=1e-6)  # torch reduces in float32


def test_mean_over_pairs_matches_passt_kld():
    m = get_metric("kl_passt", ci_resamples=0)
    m.update(FIX["gen_logits"], FIX["ref_logits"], [f"id{i}" for i in range(6)])
    result = m.compute()
    assert result.value == pytest.approx(float(FIX["kl_mean"]), rel=1e-6)
    assert result.per_clip["id5"] == pytest.approx(float(FIX["kl"][5]), rel=1e-6)


def test_direction_and_epsilon_are_generated_given_reference():
    p = np.array([[0.5, 0.5, 0.0]])
    q = np.array([[1.0, 0.0, 0.0]])
    # p·ln p − p·ln(q + 1e-6): the zero of the generated side contributes 0, the reference gets ε
    expected = 0.5 * np.log(0.5) - 0.5 * np.log(1.0 + 1e-6) + 0.5 * np.log(0.5) - 0.5 * np.log(1e-6)
    assert kl_from_probabilities(p, q)[0] == pytest.approx(expected, rel=1e-12)
    assert kl_from_probabilities(q, p)[0] == pytest.approx(-np.log(0.5 + 1e-6), rel=1e-12)


def test_sigmoid_variant_is_the_same_sum_over_elementwise_sigmoids():
    gen, ref = FIX["gen_logits"][:3].astype(np.float64), FIX["ref_logits"][:3].astype(np.float64)
    p, q = 1 / (1 + np.exp(-gen)), 1 / (1 + np.exp(-ref))
    expected = np.sum(p * (np.log(p) - np.log(q + 1e-6)), axis=-1)
    np.testing.assert_allclose(kl_divergence(gen, ref, kind="sigmoid"), expected, rtol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"generated logits \(2, 3\) and reference logits \(2, 4\) must have the same"):
        kl_divergence(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="unknown KL kind 'log'; use one of softmax, sigmoid"):
        kl_divergence(np.zeros((1, 3)), np.zeros((1, 3)), kind="log")
    with pytest.raises(ValueError, match="reference logits contain NaN or Inf"):
        kl_divergence(np.zeros((1, 3)), np.full((1, 3), np.inf))
