"""Control conditions on the latent grid: golden signals, and agreement of the audio extractors with
the corpus ground truth on rendered clips."""

from __future__ import annotations

import numpy as np
import pytest

from t2mbench.bench.corpus import build_corpus
from t2mbench.core.audio import load_audio
from t2mbench.core.manifest import load_clipset
from t2mbench.reference_models.adapters import conditions as C

SR, HOP = 16_000, 512


def _sine(midi: float, seconds: float = 2.0, amp: np.ndarray | float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t)


def test_melody_of_a_sine_is_its_semitone_bin():
    frames = 2 * SR // HOP
    y = _sine(72) + 0.3 * _sine(79)  # C5 and G5
    m = C.melody_condition(y, SR, HOP, frames)
    assert m.shape == (128, frames) and m.dtype == np.float32
    assert (m.sum(axis=0)[2:-2] == C.TOP_K).all()
    assert m[72, 2:-2].all() and m[79, 2:-2].all()
    # the 4 bins of a frame are the two tones and their semitone neighbours, nothing an octave away
    assert set(np.nonzero(m[:, frames // 2])[0]) <= {71, 72, 73, 78, 79, 80}
    # silence gets no bins; stereo takes the union of the channels' top-4
    assert C.melody_condition(np.zeros(SR), SR, HOP, 31).sum() == 0
    stereo = C.melody_condition(np.stack([_sine(72), _sine(76)]), SR, HOP, frames)
    assert stereo[72, frames // 2] == stereo[76, frames // 2] == 1 and stereo[:, frames // 2].sum() == 8


def test_melody_truth_is_the_top_voice_at_frame_centres():
    midi = np.r_[np.full(50, 64), np.full(50, -1)].astype(np.int16)
    truth = {"melody_times": np.arange(100) / 100, "melody_midi": midi}
    m = C.melody_truth(truth, HOP, SR, 31)
    centres = C.frame_centres(31, HOP, SR)
    assert np.array_equal(np.nonzero(m[64])[0], np.nonzero(centres < 0.495)[0])
    assert m.sum() == (centres < 0.495).sum()


def test_click_train_gives_its_beats_and_f1_one():
    y = np.zeros(6 * SR)
    beats = np.arange(0.25, 5.8, 0.5)  # 120 BPM, accents every 4th beat from 0.25 s
    for i, b in enumerate(beats):
        n = int(b * SR)
        y[n : n + 160] = (1.0 if i % 4 == 0 else 0.4) * np.hanning(160)
        y[n : n + 800] += (0.5 if i % 4 == 0 else 0.0) * np.sin(2 * np.pi * 80 * np.arange(800) / SR)
    est, down = C.track_beats(y, SR)
    assert C.beat_f1(est, beats) == 1.0
    assert C.beat_f1(down, beats[::4]) == 1.0
    r = C.rhythm_condition(y, SR, HOP, 6 * SR // HOP)
    got = np.nonzero(r[0])[0]  # the onset peak can fall one latent frame late
    assert len(got) == len(beats) and np.abs(got - np.floor(beats * SR / HOP)).max() <= 1
    assert np.array_equal(np.nonzero(r[1])[0], got[::4])


def test_beat_f1_greedy_one_to_one_within_70_ms():
    assert C.beat_f1([0.0, 0.5, 1.0], [0.06, 0.5, 2.0]) == pytest.approx(2 / 3)
    assert C.beat_f1([0.5, 0.52], [0.5]) == pytest.approx(2 * 0.5 * 1 / 1.5)  # one reference beat matches once
    assert C.beat_f1([0.0], [0.07]) == 0.0  # |Δ| < 70 ms, strictly
    assert C.beat_f1([], [1.0]) == 0.0


def test_dynamics_follow_a_level_ramp():
    amp = np.linspace(0.01, 1.0, 4 * SR)
    y = _sine(69, 4.0, amp)
    d = C.dynamics_condition(y, SR, HOP, 4 * SR // HOP)[0]
    want = 20 * np.log10(amp[(C.frame_centres(len(d), HOP, SR) * SR).astype(int)])
    inner = slice(20, -20)  # away from the smoothing window's edges
    assert np.corrcoef(d[inner], want[inner])[0, 1] > 0.999
    assert -1.5 < d.max() <= 0.0  # relative to the loudest 10-ms frame, after 1-s smoothing
    assert np.diff(d[inner]).min() > 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("control_corpus") / "corpus"
    build_corpus(out, 8, 5.0, 0, progress=False)
    return out


def test_extractors_agree_with_the_corpus_truth(corpus):
    """On these 8 clips (seed 0, 5 s; the first 8 of the 320-clip corpus whose figures the README
    quotes): top voice in the top-4 bins, its pitch class among theirs, beat F1, dynamics r."""
    hit, pc, f1, r = [], [], [], []
    for clip in load_clipset(corpus):
        audio, _ = load_audio(clip.path, sample_rate=SR, channels="mono")
        truth = dict(np.load(clip.truth))
        frames = audio.shape[-1] // HOP
        m, mt = C.melody_condition(audio, SR, HOP, frames), C.melody_truth(truth, HOP, SR, frames)
        voiced = mt.sum(axis=0) > 0
        hit.append((m * mt).sum() / voiced.sum())
        fold = np.zeros((2, 12, frames))
        for k in range(128):
            fold[0, k % 12] += m[k]
            fold[1, k % 12] += mt[k]
        pc.append(((fold[0] > 0) & (fold[1] > 0)).any(axis=0)[voiced].mean())
        f1.append(C.beat_f1(C.track_beats(audio.mean(axis=0), SR)[0], truth["beat_times"]))
        rt = C.dynamics_truth(truth, HOP, SR, frames)[0]
        r.append(np.corrcoef(C.dynamics_condition(audio, SR, HOP, frames)[0], rt)[0, 1])
    got = [np.mean(hit), np.mean(pc), np.mean(f1), np.mean(r)]
    assert got == pytest.approx(GOLDEN, abs=1e-6), got


GOLDEN = [0.7681342780026991, 0.9622764844804319, 0.6965639140271493, 0.9345487548991411]
