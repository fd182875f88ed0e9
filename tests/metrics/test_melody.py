"""Melody accuracy: MuseControlLite's chroma pipeline (golden fixture from its own code with
torchaudio 2.9 / librosa 0.11 / scipy), the torchaudio resampler, librosa 0.10 chroma pieces,
and mir_eval.melody's scores (fixture from mir_eval 0.8.2)."""

from pathlib import Path

import numpy as np
import pytest

from t2mbench.core.dsp.chroma import chroma_filters, estimate_tuning, power_spectrogram
from t2mbench.core.dsp.resample_hann import resample_hann
from t2mbench.core.manifest import ClipRecord
from t2mbench.metrics.clip_audio import ClipAudio
from t2mbench.metrics.melody import melody_accuracy, melody_classes, melody_scores
from t2mbench.metrics.registry import get_metric

FIX = Path(__file__).parents[1] / "fixtures" / "metrics"
MEL = np.load(FIX / "melody.npz")
NAMES = ["ref_a", "gen_a", "ref_b", "gen_b"]
PAIRS = [("gen_a", "ref_a"), ("gen_b", "ref_b"), ("ref_a", "ref_a"), ("gen_a", "ref_b")]


def _clip(name: str) -> ClipAudio:
    return ClipAudio(ClipRecord(id=name, path=FIX / "melody" / f"{name}.wav"))


@pytest.fixture(scope="module")
def classes():
    return {n: melody_classes(_clip(n).mono(44_100, "sinc_hann")) for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_pitch_classes_equal_musecontrollite(classes, name):
    np.testing.assert_array_equal(classes[name], MEL[f"{name}_classes"])


@pytest.mark.parametrize(("gen", "ref"), PAIRS)
def test_accuracy_equals_musecontrollite(classes, gen, ref):
    assert melody_accuracy(classes[gen], classes[ref]) == pytest.approx(float(MEL[f"acc_{gen}__{ref}"]), abs=1e-12)


def test_metric_feeds_from_shared_audio_and_averages_clips():
    from t2mbench.metrics.base import ScoringItem

    m = get_metric("melody_acc", ci_resamples=0)
    for i, (g, r) in enumerate(PAIRS[:2]):
        m.feed(ScoringItem(f"p{i}", _clip(g), _clip(r)))
    expected = (MEL["acc_gen_a__ref_a"] + MEL["acc_gen_b__ref_b"]) / 2
    assert m.compute().value == pytest.approx(float(expected), abs=1e-12)


def test_resampler_equals_torchaudio_defaults():
    data = np.load(FIX / "resample_hann.npz")
    for key in data.files:
        if key in ("input", "versions"):
            continue
        a, b = map(int, key.split("_"))
        np.testing.assert_allclose(resample_hann(data["input"], a, b), data[key], atol=2e-7, err_msg=key)


def _detuned_tone(cents: float, sr: int = 44_100) -> np.ndarray:
    """The fixture script's ``detuned_tone``: 1 s of a 4-harmonic tone on A4 detuned by ``cents``."""
    t = np.arange(sr) / sr
    f = 440.0 * 2 ** (cents / 1200.0)
    return sum(0.5**h * np.sin(2 * np.pi * (h + 1) * f * t) for h in range(4))


def test_tuning_estimate_equals_librosa():
    # librosa's estimate runs piptrack on the *power* spectrogram, so +25 cents reads as +0.34 bin
    got = [estimate_tuning(power_spectrogram(_detuned_tone(c), 2048, 256), 44_100) for c in MEL["tuning_cents"]]
    np.testing.assert_allclose(got, MEL["tuning"], atol=1e-12)
    assert len(set(np.round(got, 2))) == len(got)


def test_chroma_filters_put_a440_on_class_a():
    fb = chroma_filters(44_100, 2048)
    assert fb.dtype == np.float32 and fb.shape == (12, 1025)
    assert int(np.argmax(fb[:, round(440 * 2048 / 44_100)])) == 9  # C=0 ... A=9


def test_mir_eval_scores():
    data = np.load(FIX / "mir_eval_melody.npz")
    for i in range(4):
        got = melody_scores(*(data[f"case{i}_{k}"] for k in ("ref_time", "ref_freq", "est_time", "est_freq")))
        np.testing.assert_allclose(list(got.values()), data[f"case{i}_scores"], atol=1e-12, err_msg=f"case {i}")


def test_too_short_for_the_zero_phase_filter():
    with pytest.raises(ValueError, match="5 samples are too few for the zero-phase high-pass"):
        melody_classes(np.zeros(5, np.float32))
