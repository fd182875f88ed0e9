import hashlib
import subprocess
import sys

import numpy as np
import pytest

from t2mbench.bench.corpus.render import SAMPLE_RATE, MissingDependencyError, Notes, render, soundfont_path

SR = SAMPLE_RATE


def _one_note(key=69, program=0, pan=64, start=0.25, end=1.25, total=1.5):
    notes = Notes(np.array([0]), np.array([int(start * SR)]), np.array([int(end * SR)]), np.array([key]),
                  np.array([100]))
    return render(notes, [program], [pan], int(total * SR))


def test_piano_a4_peaks_at_440_hz_after_exact_silence():
    audio = _one_note()
    assert audio.shape == (2, int(1.5 * SR)) and audio.dtype == np.float32
    assert np.all(audio[:, : int(0.25 * SR)] == 0.0)  # nothing before the note-on, exactly
    assert np.abs(audio[:, int(0.25 * SR) :]).max() > 0.01
    n = 1 << 15
    segment = audio[0, int(0.3 * SR) : int(0.3 * SR) + n].astype(np.float64) * np.hanning(n)
    spectrum = np.abs(np.fft.rfft(segment))
    k = int(np.argmax(spectrum))
    # parabolic interpolation of the peak bin
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    peak_hz = (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / n
    assert peak_hz == pytest.approx(440.0, abs=2.0)


def test_note_an_octave_up_doubles_the_peak():
    n = 1 << 15
    peaks = []
    for key in (69, 81):
        audio = _one_note(key=key, program=73)  # flute: a strong fundamental
        seg = audio[0, int(0.4 * SR) : int(0.4 * SR) + n].astype(np.float64) * np.hanning(n)
        peaks.append(np.argmax(np.abs(np.fft.rfft(seg))) * SR / n)
    assert peaks[0] == pytest.approx(440.0, abs=3.0)
    assert peaks[1] == pytest.approx(880.0, abs=3.0)


def test_pan_controller_moves_the_note_between_channels():
    left = _one_note(pan=0)
    right = _one_note(pan=127)
    energy = lambda x: float((x.astype(np.float64) ** 2).sum())  # noqa: E731
    assert energy(left[0]) > 10 * energy(left[1])
    assert energy(right[1]) > 10 * energy(right[0])


def test_render_is_byte_identical_in_another_process():
    here = hashlib.sha256(_one_note(key=60, program=40).tobytes()).hexdigest()
    code = (
        "import hashlib, numpy as np;"
        "from t2mbench.bench.corpus.render import Notes, render, SAMPLE_RATE as SR;"
        "n = Notes(np.array([0]), np.array([int(0.25 * SR)]), np.array([int(1.25 * SR)]),"
        " np.array([60]), np.array([100]));"
        "print(hashlib.sha256(render(n, [40], [64], int(1.5 * SR)).tobytes()).hexdigest())"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert there == here


def test_notes_after_the_end_are_not_played_and_length_is_exact():
    notes = Notes(np.array([0]), np.array([SR]), np.array([2 * SR]), np.array([60]), np.array([100]))
    audio = render(notes, [0], [64], SR // 2)
    assert audio.shape == (2, SR // 2)
    assert np.all(audio == 0.0)


def test_program_and_pan_per_part_are_required():
    notes = Notes(np.array([0]), np.array([0]), np.array([10]), np.array([60]), np.array([100]))
    with pytest.raises(ValueError, match=r"need 1-15 parts with one program and one pan each, got 2 and 1"):
        render(notes, [0, 1], [64], 100)


def test_missing_tinysoundfont_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps tinysoundfont"):
        _one_note()


def test_soundfont_is_the_one_inside_pretty_midi():
    import pretty_midi

    path = soundfont_path()
    assert path.name == "TimGM6mb.sf2" and path.parent.samefile(pretty_midi.__path__[0])
