import numpy as np
import pytest
from music21 import analysis

from t2mbench.bench.corpus import scores, truth
from t2mbench.bench.corpus.arrange import ClipNotes

SR = 44_100


def _notes(rows, beats=()):
    """rows: (part, pitch, start_s, end_s, in_clip)."""
    a = np.array([(p, k, round(s * SR), round(e * SR), c) for p, k, s, e, c in rows], dtype=np.int64).reshape(-1, 5)
    return ClipNotes(a[:, 0], a[:, 1], np.full(len(a), 90), a[:, 2], a[:, 3], a[:, 4].astype(bool), np.array(beats))


def test_melody_is_the_highest_sounding_pitch_on_a_10_ms_grid():
    notes = _notes([(0, 72, 0.0, 0.5, 0), (1, 60, 0.0, 1.0, 1), (0, 69, 0.7, 0.9, 1)])
    times, midi, hz = truth.melody(notes, 1.2, SR)
    assert len(times) == 120 and times[1] == 0.01
    assert (midi[:50] == 72).all() and (midi[50:70] == 60).all() and (midi[70:90] == 69).all()
    assert (midi[90:100] == 60).all() and (midi[100:] == -1).all()  # unvoiced after 1.0 s
    assert hz[75] == pytest.approx(440.0) and hz[10] == pytest.approx(523.2511306) and (hz[100:] == 0).all()


def test_melody_frame_boundaries_follow_the_sample_grid():
    # a note from 0.305 s: the frame at 0.30 s is before it, the one at 0.31 s inside it
    _, midi, _ = truth.melody(_notes([(0, 60, 0.305, 0.4, 1)]), 0.5, SR)
    assert midi[30] == -1 and midi[31] == 60 and midi[39] == 60 and midi[40] == -1


def test_loudness_curve_reads_a_full_scale_sine_at_minus_3_db():
    # 440 Hz: exactly 22 periods per 50-ms window
    t = np.arange(SR) / SR
    audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)]).astype(np.float32)
    audio[:, SR // 2 :] = 0.0
    times, db = truth.loudness_curve(audio, SR)
    assert len(times) == 20 and times[0] == pytest.approx(0.025)
    np.testing.assert_allclose(db[:10], -3.0103, atol=1e-3)
    assert (db[10:] == truth.SILENCE_DB).all()


@pytest.mark.parametrize(
    "key", ["bach/bwv276", "bach/bwv288", "haydn/opus1no1/movement2", "ryansMammoth/KatysRamblesJig"]
)
def test_key_estimate_matches_music21_krumhansl_kessler(key):
    info = {p.key: p for p in scores.load_table()}[key]
    score = scores.parse_score(info)
    expected = analysis.discrete.KrumhanslKessler().getSolution(scores.load_music21(info.path, info.number))
    hist = np.bincount(score.pitch % 12, weights=score.duration, minlength=12)
    tonic, mode = truth.key_from_histogram(hist)
    assert (tonic, mode) == (expected.tonic.pitchClass, expected.mode)


def test_estimate_key_names_and_clips_durations():
    # A minor triad held, plus a long C major chord that starts after the clip ends
    notes = _notes([(0, 69, 0, 2, 1), (0, 72, 0, 2, 1), (0, 76, 0, 2, 1), (0, 57, 0, 2, 1),
                    (1, 60, 2.5, 9, 0), (1, 64, 2.5, 9, 0), (1, 67, 2.5, 9, 0)])
    assert truth.estimate_key(notes, 2.0, SR) == ("A", "minor")
    assert truth.estimate_key(notes, 9.0, SR) == ("C", "major")


def test_note_density_counts_onsets_inside_the_clip():
    notes = _notes([(0, 60, 0, 1, 0), (0, 62, 1, 2, 1), (0, 64, 2, 3, 1), (1, 48, 2, 3, 1)])
    assert truth.note_density(notes, 2.0) == 1.5


def test_npz_is_byte_stable_and_loads(tmp_path):
    arrays = {"b": np.arange(5, dtype=np.int16), "a": np.linspace(0, 1, 7), "s": np.float64(120.0)}
    p1 = truth.write_npz(tmp_path / "one.npz", arrays)
    p2 = truth.write_npz(tmp_path / "two.npz", dict(reversed(list(arrays.items()))))
    assert p1.read_bytes() == p2.read_bytes()
    loaded = np.load(p1)
    assert sorted(loaded.files) == ["a", "b", "s"] and loaded["b"].dtype == np.int16
    np.testing.assert_array_equal(loaded["a"], arrays["a"])
    assert float(loaded["s"]) == 120.0
