"""STFT and mel distance against auraloss 0.4.0 and stable-audio-tools' vendored copy (golden
fixture made with both; tested without them)."""

from pathlib import Path

import numpy as np
import pytest

from t2mbench.metrics.registry import get_metric
from t2mbench.metrics.spectral import mel_distance, spectral_terms, stft_distance

FIX = np.load(Path(__file__).parents[1] / "fixtures" / "metrics" / "spectral.npz")
SR = 44_100


def _fn(name):
    return (lambda e, t, scope: stft_distance(e, t, sc_scope=scope)) if name == "stft" else (
        lambda e, t, scope: mel_distance(e, t, SR, sc_scope=scope))


@pytest.mark.parametrize("tag", ["", "mono_"])
@pytest.mark.parametrize("name", ["stft", "mel"])
def test_per_clip_values_match_both_upstream_scopes(name, tag):
    est, tgt = FIX[f"{tag}estimate"], FIX[f"{tag}target"]
    fn = _fn(name)
    np.testing.assert_allclose(fn(est, tgt, "signal"), FIX[f"sat_{tag}{name}_item"], rtol=5e-7)
    np.testing.assert_allclose(fn(est, tgt, "batch"), FIX[f"aur_{tag}{name}_item"], rtol=5e-7)


@pytest.mark.parametrize("name", ["stft", "mel"])
def test_batch_values(name):
    est, tgt = FIX["estimate"], FIX["target"]
    fn = _fn(name)
    # SAT: SC per signal then the mean, so the batch value is the mean of the per-clip values
    assert fn(est, tgt, "signal").mean() == pytest.approx(float(FIX[f"sat_{name}_batch"]), rel=5e-7)
    # auraloss 0.4.0: one Frobenius ratio over all 6 signals = one item holding every channel
    flat = lambda a: a.reshape(1, -1, a.shape[-1])  # noqa: E731
    assert fn(flat(est), flat(tgt), "batch")[0] == pytest.approx(float(FIX[f"aur_{name}_batch"]), rel=5e-7)
    # ...which is not the mean over clips: the scopes differ for stereo batches
    assert abs(fn(est, tgt, "batch").mean() - float(FIX[f"aur_{name}_batch"])) > 1e-4


def test_scopes_agree_on_a_single_mono_signal():
    est, tgt = FIX["mono_estimate"][:1], FIX["mono_target"][:1]
    assert stft_distance(est, tgt, sc_scope="signal")[0] == pytest.approx(stft_distance(est, tgt, sc_scope="batch")[0])


def test_metric_reports_components_and_the_default_scope():
    m = get_metric("stft", ci_resamples=0)
    assert m.settings()["sc_scope"] == "signal"
    m.update(FIX["estimate"], FIX["target"], ["a", "b", "c"])
    r = m.compute()
    sc, lm = spectral_terms(FIX["estimate"], FIX["target"])
    assert r.value == pytest.approx(float(FIX["sat_stft_batch"]), rel=5e-7)
    assert {c.name: c.value for c in r.components} == pytest.approx({"stft.sc": sc.mean(), "stft.log_mag": lm.mean()})


def test_bad_inputs():
    with pytest.raises(ValueError, match="signals of 400 samples are too short for a reflect-padded 1024-point STFT"):
        stft_distance(np.zeros((1, 400)), np.zeros((1, 400)))
    with pytest.raises(ValueError, match=r"estimate \(1, 1, 800\) and target \(1, 1, 900\) must have the same shape"):
        stft_distance(np.zeros((1, 800)), np.zeros((1, 900)))
    with pytest.raises(ValueError, match="unknown sc_scope 'clip'; use one of signal, batch"):
        get_metric("mel", sc_scope="clip")
