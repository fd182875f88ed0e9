import numpy as np
import pytest

from t2mbench.bench.corpus import arrange as arr
from t2mbench.bench.corpus import scores

SR = 44_100


@pytest.fixture(scope="module")
def chorale():
    return scores.parse_score({p.key: p for p in scores.load_table()}["bach/bwv268"])


def test_choose_piece_only_picks_pieces_long_enough():
    table = scores.load_table()
    rng = np.random.default_rng(0)
    picks = [arr.choose_piece(rng, table, 200.0) for _ in range(50)]
    assert all(p.beats >= 200.0 for p in picks)
    assert len({p.collection for p in picks}) > 3  # collections first, then pieces


def test_arrangement_draws_stay_in_their_ranges(chorale):
    for seed in range(30):
        a = arr.arrange(np.random.default_rng(seed), chorale, 10.0)
        assert arr.TEMPO_MIN <= a.tempo_bpm <= arr.TEMPO_MAX
        assert -5 <= a.transpose <= 5
        assert len(a.programs) == len(a.pans) == len(a.velocities) == 4
        assert all(24 <= cc <= 104 for cc in a.pans) and all(70 <= v <= 100 for v in a.velocities)
        assert a.start_ql in chorale.bar_starts
        assert a.start_ql + 10.0 / a.seconds_per_ql <= chorale.info.end_ql + 1e-9


def test_tempo_is_capped_so_the_music_lasts(chorale):
    # bwv268 has 43 beats after its pickup: 40 s needs <= 64 bpm
    for seed in range(20):
        a = arr.arrange(np.random.default_rng(seed), chorale, 40.0)
        assert 60 <= a.tempo_bpm <= 64


@pytest.mark.parametrize(
    "ranks, expected",
    [
        ([0], (40,)),
        ([0, 1], (40, 42)),
        ([0, 1, 2, 3], (40, 40, 41, 42)),
        ([3, 0, 2, 1], (42, 40, 41, 40)),
        ([0, 1, 2, 3, 4, 5], (40, 40, 41, 41, 41, 42)),
    ],
)
def test_programs_follow_register(ranks, expected):
    assert arr.assign_programs(np.random.default_rng(0), "strings", ranks) == expected


def test_mixed_ensemble_draws_from_register_pools():
    progs = arr.assign_programs(np.random.default_rng(1), "mixed", [0, 1, 2, 3])
    assert progs[0] in arr.MIXED_POOLS[0] and progs[3] in arr.MIXED_POOLS[2]
    assert progs[1] in arr.MIXED_POOLS[1] and progs[2] in arr.MIXED_POOLS[1]


def test_segments_are_mostly_sounding_music(chorale):
    for seed in range(10):
        a = arr.arrange(np.random.default_rng(seed), chorale, 8.0)
        end = a.start_ql + 8.0 / a.seconds_per_ql
        assert arr.sounding_fraction(chorale, a.start_ql, end) >= arr.MIN_COVERAGE


def test_clip_notes_time_transpose_and_beats(chorale):
    a = arr.arrange(np.random.default_rng(3), chorale, 6.0)
    notes = arr.clip_notes(chorale, a, 6.0, SR)
    spq = a.seconds_per_ql
    # a note whose onset is exactly one quarter after the segment start
    pick = np.flatnonzero(np.isclose(chorale.onset, a.start_ql + 1.0))[0]
    onset_sample = round(1.0 * spq * SR)
    i = np.flatnonzero((notes.start == onset_sample) & (notes.part == chorale.part[pick]))[0]
    assert notes.pitch[i] == chorale.pitch[pick] + a.transpose
    assert notes.end[i] == round((1.0 + chorale.duration[pick]) * spq * SR)
    assert notes.velocity[i] == a.velocities[chorale.part[pick]]
    # beats: one per quarter (4/4), from 0, at 60/bpm s
    np.testing.assert_allclose(notes.beats[:4], np.round(np.arange(4) * 60.0 / a.tempo_bpm * SR) / SR)
    assert notes.beats[-1] < 6.0 and notes.start.min() >= 0 and notes.start.max() < 6.0 * SR


def test_pan_position():
    assert arr.pan_position(64) == 0.0 and arr.pan_position(1) == -1.0 and arr.pan_position(127) == 1.0


def test_a_piece_too_short_for_the_clip_is_refused(chorale):
    with pytest.raises(ValueError, match=r"^bach/bwv268: 43 beats cannot last 50 s at 60 bpm or faster$"):
        arr.arrange(np.random.default_rng(0), chorale, 50.0)
