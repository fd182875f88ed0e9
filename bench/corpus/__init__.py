"""The rendered-score benchmark corpus: public-domain pieces from music21's corpus, arranged
per clip from a seed (instruments, tempo, transposition, pan), rendered with the General
MIDI soundfont inside pretty_midi through tinysoundfont, with SAO-style captions and
per-clip ground truth (melody, beats, tempo, key, programs, note density, loudness).

Modules: :mod:`~t2mbench.bench.corpus.scores` (the versioned piece table, parsing),
:mod:`~t2mbench.bench.corpus.arrange` (per-clip choices and timing), :mod:`~t2mbench.bench.corpus.render`
(MIDI to audio), :mod:`~t2mbench.bench.corpus.captions`, :mod:`~t2mbench.bench.corpus.truth`,
:mod:`~t2mbench.bench.corpus.build` (orchestration and resume) and :mod:`~t2mbench.bench.corpus.check`
(validating any clip set, ours or external).
"""

from t2mbench.bench.corpus.build import OWNER, BuildResult, build_corpus, owner_settings

__all__ = ["OWNER", "BuildResult", "build_corpus", "owner_settings"]
