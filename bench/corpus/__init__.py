"""The rendered-score benchmark corpus: public-domain pieces from music21's corpus, arranged
per clip from a seed (instruments, tempo, transposition, pan), rendered with the General
MIDI soundfont inside pretty_midi through tinysoundfont, with SAO-style captions and
per-clip ground truth (melody, beats, tempo, key, programs, note density, loudness).

Modules: :mod:`~bench.corpus.scores` (the versioned piece table, parsing),
:mod:`~bench.corpus.arrange` (per-clip choices and timing), :mod:`~bench.corpus.render`
(MIDI to audio), :mod:`~bench.corpus.captions`, :mod:`~bench.corpus.truth`,
:mod:`~bench.corpus.build` (orchestration and resume) and :mod:`~bench.corpus.check`
(validating any clip set, ours or external).
"""

from bench.corpus.build import BuildResult, build_corpus

__all__ = ["BuildResult", "build_corpus"]
