import numpy as np
import pytest
from music21 import chord, converter, note, stream, tie

from t2mbench.bench.corpus import scores
from t2mbench.core.errors import ConfigError

SURVEYED = ("parts", "beat_ql", "start_ql", "end_ql", "notes_sha256")


def test_table_is_sorted_unique_and_usable():
    table = scores.load_table()
    keys = [p.key for p in table]
    assert keys == sorted(set(keys)) and len(table) >= 150
    assert {p.beat_ql for p in table} <= {1.0, 1.5, 2.0}
    assert min(p.beats for p in table) >= 16
    assert len({p.collection for p in table}) >= 10
    assert all(p.composer and p.title for p in table)


@pytest.mark.parametrize("key", ["bach/bwv268", "ryansMammoth/KatysRamblesJig", "oneills1850/0001-0050#2"])
def test_table_rows_are_what_this_music21_surveys(key):
    # the table was made by scores.survey; a change of parser or of music21 shows here
    row = {p.key: p for p in scores.load_table()}[key]
    fresh = scores.survey(row.path, row.number)
    assert {k: getattr(row, k) for k in SURVEYED} == fresh


def test_parse_score_gives_sorted_notes_and_a_beat_grid():
    info = {p.key: p for p in scores.load_table()}["bach/bwv268"]
    s = scores.parse_score(info)
    assert s.notes_sha256 == info.notes_sha256
    assert set(s.part.tolist()) == {0, 1, 2, 3}
    assert np.all(s.duration > 0) and (s.onset + s.duration).max() == info.end_ql
    # 4/4 with a one-beat pickup: beats every quarter from the pickup, bars every 4 quarters after it
    assert s.bar_starts[0] == info.start_ql == 1.0
    np.testing.assert_array_equal(np.diff(s.bar_starts[:5]), 4.0)
    np.testing.assert_array_equal(s.beats[:6], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    # soprano above bass on average
    assert s.pitch[s.part == 0].mean() > s.pitch[s.part == 3].mean() + 12


def test_ties_merge_same_pitch_only_and_follow_into_chords():
    p = stream.Part()
    p.append(stream.Measure())
    m = p.getElementsByClass(stream.Measure)[0]
    a = note.Note("C4", quarterLength=1.0)
    a.tie = tie.Tie("start")
    b = note.Note("C4", quarterLength=1.0)  # continues a (tie stop)
    b.tie = tie.Tie("stop")
    c = note.Note("E4", quarterLength=1.0)
    c.tie = tie.Tie("start")  # an ABC-style slur-tie into a different pitch: not merged
    d = chord.Chord(["E4", "G4"], quarterLength=1.0)
    d.notes[0].tie = tie.Tie("stop")  # chord tones carry their own ties
    for n in (a, b, c, d):
        m.append(n)
    s = stream.Score([p])
    part, onset, duration, pitch = scores.extract_notes(s)
    assert list(zip(onset.tolist(), duration.tolist(), pitch.tolist())) == [
        (0.0, 2.0, 60),  # C4 tied over two beats
        (2.0, 2.0, 64),  # E4 tied into the chord's E4
        (3.0, 1.0, 67),  # G4 alone
    ]
    assert scores.extract_notes(converter.parse("X:1\nM:2/4\nL:1/8\nK:C\nc3-d c4|]", format="abc"))[3].tolist() == [
        72, 74, 72
    ]


def test_bar_grid_skips_the_pickup_bar_and_counts_its_beats_back_from_the_barline():
    s = converter.parse("X:1\nM:6/8\nL:1/8\nK:D\nA|d2f a2f|d3 d3|]", format="abc")
    bar_starts, beats, units = scores.bar_grid(s)
    assert units == {1.5}  # dotted quarter in 6/8
    np.testing.assert_array_equal(bar_starts, [0.5, 3.5])
    np.testing.assert_array_equal(beats, [0.5, 2.0, 3.5, 5.0])


def test_unknown_piece_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"music21 cannot parse corpus piece 'nosuch/piece'"):
        scores.survey("nosuch/piece")
