"""The harmonic-salience pitch tracker on synthetic melodies, and pitch_acc against truth files."""

import numpy as np
import pytest

from t2mbench.core.audio import save_audio
from t2mbench.core.errors import T2MBenchError
from t2mbench.core.manifest import ClipRecord
from t2mbench.metrics.base import ScoringItem
from t2mbench.metrics.clip_audio import ClipAudio
from t2mbench.metrics.melody import melody_scores
from t2mbench.metrics.pitch import track_pitch
from t2mbench.metrics.registry import get_metric

SR = 44_100


def melody(notes, note_s=0.2, harmonics=8, seed=0):
    """Harmonic tones (0 = rest) and the truth on the 10-ms grid."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * note_s)) / SR
    audio, truth = [], []
    for n in notes:
        if n == 0:
            audio.append(np.zeros_like(t))
            truth += [0.0] * int(note_s * 100)
            continue
        f = 440.0 * 2 ** ((n - 69) / 12)
        tone = sum(0.7**h * np.sin(2 * np.pi * (h + 1) * f * t + rng.uniform(0, 6)) for h in range(harmonics)
                   if (h + 1) * f < SR / 2)
        audio.append(0.2 * tone * np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01))
        truth += [f] * int(note_s * 100)
    return np.concatenate(audio), np.arange(len(truth)) * 0.01, np.array(truth)


NOTES = [60, 62, 64, 65, 67, 0, 69, 71, 72, 0, 48, 84, 55, 79]


def test_tracks_a_melody_over_four_octaves():
    audio, times, truth = melody(NOTES)
    track = track_pitch(audio)
    np.testing.assert_allclose(track.times[:5], [0.0, 0.01, 0.02, 0.03, 0.04])
    s = melody_scores(times, truth, track.times, track.f0_hz)
    assert s["raw_pitch"] > 0.95 and s["raw_chroma"] > 0.95 and s["overall"] > 0.9


def test_a_wrong_melody_scores_low_and_an_octave_error_keeps_chroma():
    audio, times, truth = melody(NOTES)
    track = track_pitch(audio)
    wrong = melody_scores(times, truth * 2 ** (3 / 12), track.times, track.f0_hz)
    octave = melody_scores(times, truth * 2.0, track.times, track.f0_hz)
    assert wrong["raw_pitch"] < 0.05 and wrong["raw_chroma"] < 0.05
    assert octave["raw_pitch"] < 0.05 and octave["raw_chroma"] > 0.95


def test_melody_survives_a_quieter_accompaniment():
    audio, times, truth = melody(NOTES)
    t = np.arange(audio.size) / SR
    chord = sum(0.04 * np.sin(2 * np.pi * f * t) for f in (130.81, 164.81, 196.0))
    s = melody_scores(times, truth, *(lambda tr: (tr.times, tr.f0_hz))(track_pitch(audio + chord)))
    assert s["raw_pitch"] > 0.9


def test_silence_is_unvoiced():
    track = track_pitch(np.zeros(SR // 2))
    assert np.all(track.f0_hz <= 0)


def test_metric_reads_the_truth_file(tmp_path):
    audio, times, truth = melody(NOTES)
    save_audio(tmp_path / "a.wav", audio[None].astype(np.float32), SR)
    np.savez(tmp_path / "a.npz", melody_times=times, melody_hz=truth)
    m = get_metric("pitch_acc", ci_resamples=0)
    clip = ClipAudio(ClipRecord(id="a", path=tmp_path / "a.wav"))
    m.feed(ScoringItem("a", clip, None, truth=tmp_path / "a.npz"))
    r = m.compute()
    track = track_pitch(audio.astype(np.float32))
    expected = melody_scores(times, truth, track.times, track.f0_hz)
    assert r.value == pytest.approx(expected["raw_pitch"], abs=1e-3)
    assert [c.name for c in r.components] == ["pitch_acc.raw_chroma", "pitch_acc.overall"]
    with pytest.raises(T2MBenchError, match="clip 'b' has no ground-truth melody"):
        m.feed(ScoringItem("b", clip, None, truth=None))


def test_wrong_rate_is_refused():
    with pytest.raises(ValueError, match="the pitch tracker works at 44100 Hz; resample first"):
        track_pitch(np.zeros(100), 16_000)
